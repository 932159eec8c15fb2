"""A real Orthanc PACS with its DICOMweb plugin for the tests: started on 127.0.0.1 on a free port, stopped after."""

import json
import socket
import subprocess
import time
from pathlib import Path

import requests

DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
USER, PASSWORD = "radiology", "s3cret-for-tests"
START_SECONDS = 60


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Orthanc:
    """A running Orthanc: its DICOMweb root URL and the REST API (to look at what it stores)."""

    def __init__(self, folder, orthanc):
        self.port = free_port()
        config = {"Name": "LiverResUNet-test", "StorageDirectory": str(folder / "storage"),
                  "IndexDirectory": str(folder / "storage"), "HttpPort": self.port, "DicomServerEnabled": False,
                  "RemoteAccessAllowed": False, "AuthenticationEnabled": True,
                  "RegisteredUsers": {USER: PASSWORD}, "Plugins": [str(DICOMWEB_PLUGIN)],
                  "DicomWeb": {"Enable": True, "Root": "/dicom-web/"}, "HttpTimeout": 60}
        (folder / "orthanc.json").write_text(json.dumps(config), encoding="utf-8")
        self.log = open(folder / "orthanc.log", "wb")
        self.process = subprocess.Popen([orthanc, str(folder / "orthanc.json")], stdout=self.log,
                                        stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}"
        self.dicomweb = f"{self.url}/dicom-web"
        self.rest = requests.Session()
        self.rest.auth = (USER, PASSWORD)
        self._wait_until_up(folder)

    def _wait_until_up(self, folder):
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Orthanc exited: {(folder / 'orthanc.log').read_text(errors='replace')[-2000:]}")
            try:
                if self.rest.get(f"{self.url}/plugins/dicom-web", timeout=2).ok:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"Orthanc did not answer within {START_SECONDS} s")

    def upload(self, paths):
        """Store DICOM files through the REST API (as a modality or a viewer would send them)."""
        for path in paths:
            self.rest.post(f"{self.url}/instances", data=Path(path).read_bytes(), timeout=30).raise_for_status()

    def series_of_study(self, study_uid):
        """[(modality, SeriesInstanceUID, SeriesDescription)] of a study, from the REST API."""
        found = self.rest.post(f"{self.url}/tools/find", json={"Level": "Series", "Expand": True,
                                                               "Query": {"StudyInstanceUID": study_uid}}, timeout=30)
        found.raise_for_status()
        return sorted((s["MainDicomTags"].get("Modality", ""), s["MainDicomTags"]["SeriesInstanceUID"],
                       s["MainDicomTags"].get("SeriesDescription", "")) for s in found.json())

    def series_file(self, series_uid):
        """The DICOM file of the first instance of a series (a SEG is one instance)."""
        found = self.rest.post(f"{self.url}/tools/find", json={"Level": "Instance", "Query": {
            "SeriesInstanceUID": series_uid}}, timeout=30)
        found.raise_for_status()
        answer = self.rest.get(f"{self.url}/instances/{found.json()[0]}/file", timeout=30)
        answer.raise_for_status()
        return answer.content

    def instance_count(self):
        """How many instances the PACS stores."""
        return self.rest.get(f"{self.url}/statistics", timeout=30).json()["CountInstances"]

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()
