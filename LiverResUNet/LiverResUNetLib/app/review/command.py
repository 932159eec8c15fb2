"""``review``: open a CT and its liver / tumor segmentation in the browser and review it lesion by lesion.

Prints the page's URL (with its access token) as the first line on standard output, then serves it until
interrupted. The page listens on 127.0.0.1 unless --host names another address and --allow-remote is given;
a request without the token is refused. Save writes OUTPUT/segmentation.seg.nrrd, and OUTPUT/segmentation.dcm (a
DICOM SEG referencing the CT) when the CT is a DICOM series; every edit is also kept in OUTPUT's recovery file,
which a restart on the same inputs offers to resume. Needs the review environment (trame-slicer;
scripts/review_env.sh).

With --input a DICOMweb series URL (BASE/studies/<StudyUID>/series/<SeriesUID>), the CT is retrieved (WADO-RS)
before serving, the segmentation is by default the newest DICOM SEG of this project on the server that references
the series, and Save also stores the SEG into the CT's study there (STOW-RS). With --worklist instead of --input,
the cases of a folder (one sub-folder per case: the CT, ``ct/`` or ``ct.*``, and ``segmentation.*``; see
``worklist``) or of a DICOMweb server (BASE: its CT series that have a SEG of this project) are reviewed one after
another, each into OUTPUT/<case>/, their states kept in OUTPUT/worklist.json.
"""

import argparse
import secrets
import socket
import sys
from pathlib import Path

from LiverResUNetLib.datasets.cases import safe_case_name
from LiverResUNetLib.dicomweb.connection import is_dicomweb_url, parse_location
from LiverResUNetLib.errors import input_error
from LiverResUNetLib.progress import ProgressReporter

SUMMARY = "review and correct a segmentation lesion by lesion in the browser (trame-slicer)"
LOCAL_HOST = "127.0.0.1"
TOKEN_COOKIE = "liverresunet_review_token"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", help="the CT: a DICOM folder (one CT series), an image file (.nii.gz, .nrrd...) "
                                        "or a DICOMweb series URL (BASE/studies/<StudyUID>/series/<SeriesUID>)")
    parser.add_argument("--worklist", help="instead of --input: a folder of cases, one sub-folder each with the CT "
                                           "(ct/ or ct.*) and its segmentation.*; or a DICOMweb server's base URL "
                                           "(its CT series that have a DICOM SEG of this project)")
    parser.add_argument("--segmentation", type=Path, help=".seg.nrrd, label map (0/1/2) or DICOM SEG (.dcm); for a "
                                                          "DICOMweb --input, default: the newest SEG of this project "
                                                          "on the server")
    parser.add_argument("--model", type=Path, help="without --segmentation: segment the CT with this model first; "
                                                    "with it: the model the DICOM SEG names as its algorithm")
    parser.add_argument("--output", type=Path, required=True, help="folder Save writes to (and the recovery file)")
    parser.add_argument("--dataset", type=Path, help="prepared dataset folder that 'Save as training case' adds the "
                                                     "reviewed case to (for train --data)")
    parser.add_argument("--case-id", help="the training case's id (default: the input's name)")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default: a free one)")
    parser.add_argument("--host", default=LOCAL_HOST, help=f"address to listen on (default {LOCAL_HOST})")
    parser.add_argument("--allow-remote", action="store_true",
                        help="needed with a --host other than 127.0.0.1: the page shows patient images")


def default_case_id(ct: str) -> str:
    """The training case's id when --case-id is not given: the CT file's or folder's name, or its series UID."""
    if is_dicomweb_url(ct):
        return safe_case_name(parse_location(ct).series_uid or "case")
    return safe_case_name(Path(ct).stem)


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def token_middleware(token: str):  # type: ignore[no-untyped-def]
    """An aiohttp middleware that answers 403 to any request without the token (in the query, or in the cookie
    the first request with it sets, so that the page's scripts and websocket follow)."""
    from aiohttp import web

    @web.middleware
    async def require_token(request: web.Request, handler):  # type: ignore[no-untyped-def]
        has_cookie = secrets.compare_digest(request.cookies.get(TOKEN_COOKIE, ""), token)
        if not (has_cookie or secrets.compare_digest(request.query.get("token", ""), token)):
            return web.Response(status=403, text="Forbidden: open the URL that liverresunet review printed.\n")
        response = await handler(request)
        if not has_cookie and not response.prepared:
            response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="Strict")
        return response

    return require_token


def run(args: argparse.Namespace) -> int:
    if args.host != LOCAL_HOST and not args.allow_remote:
        raise input_error(args.host, "listening beyond this computer needs --allow-remote")
    try:
        from LiverResUNetLib.app.review.page import ReviewPage, new_slicer_app
    except ImportError as error:
        raise input_error("review", f"the browser review needs trame-slicer ({error.name} is missing): "
                                    "use the review environment, scripts/review_env.sh") from error
    from LiverResUNetLib.app.review.case import ReviewCase
    from LiverResUNetLib.app.review.worklist import Worklist

    if (args.input is None) == (args.worklist is None):
        raise input_error("review", "give either --input (one case) or --worklist (a folder of cases or a "
                                    "DICOMweb server)")
    worklist = None if args.worklist is None else Worklist.load(args.worklist, args.output)
    slicer_app = new_slicer_app()
    if worklist is not None:
        name = worklist.states.first_to_review()
        page = ReviewPage(slicer_app, dataset=args.dataset, case_id=name, worklist=worklist)
        page.show(worklist.open(slicer_app.scene, name))
    else:
        page = ReviewPage(slicer_app, dataset=args.dataset, case_id=args.case_id or default_case_id(args.input))
        pending = ReviewCase.prepare(slicer_app.scene, args.input, args.segmentation, args.output, args.model)
        args.output.mkdir(parents=True, exist_ok=True)
        if pending.labels is not None:
            page.show(pending.finish(pending.labels))
        else:  # the model segments the CT once the page is served; the page (and stderr) show the progress
            reporter = ProgressReporter()
            page.ctrl.on_server_ready.add(lambda **_: page.segment_then_show(pending, reporter))
    port = args.port or free_port(args.host)
    token = secrets.token_urlsafe(24)
    print(f"http://{args.host}:{port}/index.html?token={token}", flush=True)
    if args.host != LOCAL_HOST:
        print(f"warning: the review page listens on {args.host}: anyone with the URL can see this CT",
              file=sys.stderr)

    def bind(web_server) -> None:  # type: ignore[no-untyped-def]
        web_server.app.middlewares.append(token_middleware(token))

    page.server.controller.on_server_bind.add(bind)
    page.server.start(host=args.host, port=port, open_browser=False, show_connection_info=False,
                      disable_logging=True, timeout=0)
    return 0
