"""A DICOMweb server from a URL: the client, its credentials, and one clear line for each way a request fails.

Credentials never travel on the command line: they come from the environment (``LIVERRESUNET_DICOMWEB_USER``
and ``LIVERRESUNET_DICOMWEB_PASSWORD``, or ``LIVERRESUNET_DICOMWEB_TOKEN`` for a bearer token) or from a file
named by ``LIVERRESUNET_DICOMWEB_CREDENTIALS`` (JSON: ``{"user": ..., "password": ...}`` or ``{"token": ...}``).
TLS certificates are verified (``requests``' default; a private CA goes in ``REQUESTS_CA_BUNDLE``).
"""

from __future__ import annotations

import json
import os
import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, TypeVar

from LiverResUNetLib.errors import InputError, input_error

if typing.TYPE_CHECKING:
    from dicomweb_client.api import DICOMwebClient

USER_VARIABLE, PASSWORD_VARIABLE = "LIVERRESUNET_DICOMWEB_USER", "LIVERRESUNET_DICOMWEB_PASSWORD"
TOKEN_VARIABLE, CREDENTIALS_FILE_VARIABLE = "LIVERRESUNET_DICOMWEB_TOKEN", "LIVERRESUNET_DICOMWEB_CREDENTIALS"
TIMEOUT_SECONDS = 120
_SERIES_URL = re.compile(r"^(?P<base>https?://.+?)/studies/(?P<study>[0-9.]+)/series/(?P<series>[0-9.]+)/?$")
_STUDY_URL = re.compile(r"^(?P<base>https?://.+?)/studies/(?P<study>[0-9.]+)/?$")

Result = TypeVar("Result")


@dataclass(frozen=True)
class DicomwebLocation:
    """A DICOMweb base URL, and the study and series a URL names (None for the whole server)."""

    base: str
    study_uid: Optional[str] = None
    series_uid: Optional[str] = None

    @property
    def url(self) -> str:
        """The URL this location was given as (what messages name)."""
        if self.series_uid:
            return f"{self.base}/studies/{self.study_uid}/series/{self.series_uid}"
        return self.base

    def series(self) -> tuple[str, str]:
        """``(study UID, series UID)`` of the one series this location names; InputError for a whole server."""
        if self.study_uid is None or self.series_uid is None:
            raise input_error(self.url, "names no series: give .../studies/<StudyUID>/series/<SeriesUID>")
        return self.study_uid, self.series_uid


def is_dicomweb_url(text: object) -> bool:
    """True for an http:// or https:// address (a DICOMweb server), False for a file or folder."""
    return str(text).lower().startswith(("http://", "https://"))


def parse_location(text: str) -> DicomwebLocation:
    """The base URL and UIDs of ``BASE``, ``BASE/studies/<StudyUID>/series/<SeriesUID>``.

    Raises:
        InputError: a study URL without a series (name the series, or give the base URL for every series).
    """
    text = str(text).rstrip("/")
    series = _SERIES_URL.match(text)
    if series:
        return DicomwebLocation(series["base"], series["study"], series["series"])
    if _STUDY_URL.match(text):
        raise input_error(text, "names a study: give .../studies/<StudyUID>/series/<SeriesUID> for one series, or "
                                "the DICOMweb base URL for every CT series on the server")
    return DicomwebLocation(text)


def _credentials_from_file(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise input_error(path, f"cannot be read as a DICOMweb credentials file (JSON with user and password, "
                                f"or token): {error}") from error
    if not isinstance(values, dict) or not (values.get("token") or (values.get("user") and values.get("password"))):
        raise input_error(path, "a DICOMweb credentials file holds {\"user\": ..., \"password\": ...} or "
                                "{\"token\": ...}")
    return values


def credentials(environment: Mapping[str, str] | None = None) -> dict[str, Any]:
    """{"user", "password"} or {"token"} from the environment or the credentials file it names; {} for none."""
    variables = os.environ if environment is None else environment
    if variables.get(CREDENTIALS_FILE_VARIABLE):
        return _credentials_from_file(variables[CREDENTIALS_FILE_VARIABLE])
    if variables.get(TOKEN_VARIABLE):
        return {"token": variables[TOKEN_VARIABLE]}
    if variables.get(USER_VARIABLE):
        return {"user": variables[USER_VARIABLE], "password": variables.get(PASSWORD_VARIABLE, "")}
    return {}


def connect(base: str, environment: Mapping[str, str] | None = None) -> DICOMwebClient:
    """A ``dicomweb_client.DICOMwebClient`` for ``base`` with the credentials found (see the module's docstring)."""
    import requests
    from dicomweb_client.api import DICOMwebClient

    session = requests.Session()
    found = credentials(environment)
    if found.get("token"):
        session.headers["Authorization"] = f"Bearer {found['token']}"
    elif found:
        session.auth = (found["user"], found["password"])
    return DICOMwebClient(base, session=session, timeout=TIMEOUT_SECONDS)


def _short_reason(error: BaseException) -> str:
    """The operating system's words for a failed connection, without urllib3's wrapping."""
    found = re.findall(r"\[Errno -?\d+\] ([^'\")\]]+)", str(error))
    return found[-1].strip() if found else type(error).__name__


def request(url: str, what: str, call: Callable[[], Result]) -> Result:
    """``call()``, with any failure of the server turned into one InputError that names ``url`` and ``what``.

    Raises:
        InputError: unreachable server or timeout, HTTP 401/403 (credentials), 404 (not on the server), any
            other HTTP error status.
    """
    import requests

    try:
        return call()
    except requests.HTTPError as error:
        status = error.response.status_code if error.response is not None else None
        if status in (401, 403):
            raise input_error(url, f"the server refused access while trying to {what} (HTTP {status}): set "
                                   f"{USER_VARIABLE} and {PASSWORD_VARIABLE}, {TOKEN_VARIABLE}, or "
                                   f"{CREDENTIALS_FILE_VARIABLE}") from error
        if status == 404:
            raise input_error(url, f"not found on the server while trying to {what} (HTTP 404)") from error
        raise input_error(url, f"the server answered HTTP {status} while trying to {what}") from error
    except requests.exceptions.SSLError as error:
        raise input_error(url, f"the server's TLS certificate cannot be verified ({_short_reason(error)}); a "
                               "private certificate authority goes in REQUESTS_CA_BUNDLE") from error
    except (requests.ConnectionError, requests.Timeout) as error:
        raise input_error(url, f"cannot reach the DICOMweb server to {what} ({_short_reason(error)})") from error
    except InputError:
        raise
    except (requests.RequestException, ValueError) as error:  # dicomweb-client: malformed answers
        raise input_error(url, f"the server's answer while trying to {what} cannot be used: {error}") from error
