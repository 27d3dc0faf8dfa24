"""The production router in-process (real HTTP on 127.0.0.1) in front of stdlib upstream servers."""

from __future__ import annotations

import http.client
import json
import os
import socket
import socketserver
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from platforms.local import production_router
from platforms.local.deployer import DeploymentError, LocalDeployer
from platforms.local.inference_server import free_port
from platforms.local.production_router import Evidence, RouterServer
from tests.doubles.http_server import serving

pytestmark = pytest.mark.integration


class Upstream(ThreadingHTTPServer):
    """Echoes what it received, tagged with its name, so a test sees which version answered."""

    daemon_threads = True

    def __init__(self, name: str) -> None:
        super().__init__(("127.0.0.1", 0), _Echo)
        self.name = name


class _Echo(BaseHTTPRequestHandler):
    server: Upstream

    def do_GET(self) -> None:
        self._answer(200, {"upstream": self.server.name, "method": "GET", "path": self.path})

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        status = 400 if body == "bad" else 200
        self._answer(status, {"upstream": self.server.name, "body": body, "request_id": self.headers["x-request-id"]})

    def _answer(self, status: int, document: dict[str, Any]) -> None:
        payload = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("x-request-id", str(document.get("request_id")))
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def router_server(tmp_path: Path) -> Iterator[RouterServer]:
    with serving(RouterServer(free_port(), tmp_path)) as server:
        yield server


@pytest.fixture
def router(router_server: RouterServer) -> str:
    return url_of(router_server)


def url_of(server: RouterServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def point_at(home: Path, release_id: str, port: int) -> None:
    """An older one-target production.json: still read, as 100% to that target."""
    write_targets(home, {"release_id": release_id, "port": port})


def write_targets(home: Path, document: dict[str, Any]) -> None:
    temporary = home / "production.json.tmp"
    temporary.write_text(json.dumps(document))
    os.replace(temporary, home / "production.json")


def test_without_a_deployment_it_answers_503(router):
    for response in (requests.get(router + "/", timeout=5), requests.post(router + "/score", data=b"{}", timeout=5)):
        assert response.status_code == 503
        assert response.json() == {"error": "no production deployment"}


def test_forwards_to_the_current_target_and_follows_switches(router, tmp_path):
    with serving(Upstream("blue")) as blue, serving(Upstream("green")) as green:
        point_at(tmp_path, "rel-1", blue.server_address[1])
        response = requests.post(router + "/score", data=b'{"data": [[1]]}', headers={"x-request-id": "r-1"}, timeout=5)
        assert response.status_code == 200
        assert response.json() == {"upstream": "blue", "body": '{"data": [[1]]}', "request_id": "r-1"}
        assert response.headers["content-type"] == "application/json; charset=utf-8"
        assert response.headers["x-request-id"] == "r-1"
        assert response.headers["x-mlops-release"] == "rel-1"
        assert requests.get(router + "/", timeout=5).json()["path"] == "/"

        point_at(tmp_path, "rel-2", green.server_address[1])
        assert requests.post(router + "/score", data=b"x", timeout=5).json()["upstream"] == "green"
        bad = requests.post(router + "/score", data=b"bad", timeout=5)
        assert (bad.status_code, bad.json()["upstream"]) == (400, "green")
        info = requests.get(router + "/router", timeout=5).json()
        assert info["targets"] == [{"release_id": "rel-2", "port": green.server_address[1], "weight": 100}]
        assert info["home"] == str(tmp_path)
        assert info["counts"] == {"rel-1": 1, "rel-2": 2}  # scoring requests only, not the health check


def test_weights_split_the_requests_and_a_zero_weight_gets_none(router, tmp_path):
    with serving(Upstream("blue")) as blue, serving(Upstream("green")) as green:
        targets = [{"release_id": "rel-1", "port": blue.server_address[1], "weight": 70},
                   {"release_id": "rel-2", "port": green.server_address[1], "weight": 30}]  # fmt: skip
        write_targets(tmp_path, {"targets": targets})
        answered = [requests.post(router + "/score", data=b"x", timeout=5).json()["upstream"] for _ in range(200)]
        assert (answered.count("blue"), answered.count("green")) == (140, 60)  # smooth round-robin: exact
        write_targets(tmp_path, {"targets": [{**targets[0], "weight": 100}, {**targets[1], "weight": 0}]})
        assert {requests.post(router + "/score", data=b"x", timeout=5).json()["upstream"] for _ in range(20)} == {
            "blue"
        }


def test_unreachable_target_is_a_502_naming_it(router, tmp_path):
    port = free_port()
    point_at(tmp_path, "rel-9", port)
    response = requests.post(router + "/score", data=b"{}", timeout=5)
    assert response.status_code == 502
    assert f"rel-9 (port {port}) is unreachable" in response.json()["error"]
    assert requests.get(router + "/router", timeout=5).json()["counts"] == {"rel-9": 1}  # routed there, counted


def test_unknown_routes_and_an_unreadable_target_file(router, tmp_path):
    assert requests.get(router + "/swagger.json", timeout=5).status_code == 404
    assert requests.post(router + "/other", data=b"", timeout=5).status_code == 404
    (tmp_path / "production.json").write_text("{not json")
    assert requests.post(router + "/score", data=b"{}", timeout=5).status_code == 503


def test_a_body_over_the_limit_is_refused_unread_and_nothing_is_routed(router, tmp_path):
    point_at(tmp_path, "rel-9", free_port())
    with socket.create_connection(("127.0.0.1", int(router.rsplit(":", 1)[1]))) as raw:
        size = production_router.MAX_BODY_BYTES + 1
        raw.sendall(f"POST /score HTTP/1.1\r\nHost: x\r\nContent-Length: {size}\r\n\r\n".encode())
        answer = raw.recv(65536).decode()
    assert answer.startswith("HTTP/1.1 413") and "larger than 32 MiB" in answer
    assert requests.get(router + "/router", timeout=5).json()["counts"] == {}


def test_deployer_reports_a_router_that_cannot_listen(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        deployer = LocalDeployer(tmp_path, production_port=taken.getsockname()[1])
        with pytest.raises(DeploymentError, match="cannot listen"):
            deployer.ensure_router()
    assert deployer.status()["router"] is None


# ---------------------------------------------------------------- smooth round-robin, mirroring, evidence


class Scorer(ThreadingHTTPServer):
    """Answers {"result": [first value of each row * factor]}, as azmlinfsrv would; counts what it got.

    ``status`` other than 200 answers {"error": ...} instead; with ``gate`` set, each answer waits for it.
    """

    daemon_threads = True

    def __init__(self, factor: float = 1.0, status: int = 200, gate: threading.Event | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _Score)
        self.factor, self.status, self.gate = factor, status, gate
        self.received: list[tuple[bytes, str | None]] = []
        self.lock = threading.Lock()

    @property
    def port(self) -> int:
        return int(self.server_address[1])


class _Score(BaseHTTPRequestHandler):
    server: Scorer

    def do_GET(self) -> None:
        self._answer(200, b"{}")

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.server.lock:
            self.server.received.append((body, self.headers.get("x-request-id")))
        if self.server.gate is not None:
            self.server.gate.wait(timeout=30)
        if self.server.status != 200:
            self._answer(self.server.status, b'{"error": "boom"}')
            return
        rows = json.loads(body)["data"]
        self._answer(200, json.dumps({"result": [row[0] * self.server.factor for row in rows]}).encode())

    def _answer(self, status: int, payload: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def target(release_id: str, server: Scorer | Upstream, weight: int = 100) -> dict[str, Any]:
    return {"release_id": release_id, "port": server.server_address[1], "weight": weight}


def mirror(release_id: str, server: Scorer, share: int) -> dict[str, Any]:
    return {"release_id": release_id, "port": server.port, "share": share}


def score(url: str, rows: list[list[float]], request_id: str | None = None) -> requests.Response:
    headers = {"x-request-id": request_id} if request_id else {}
    return requests.post(url + "/score", json={"data": rows}, headers=headers, timeout=10)


def evidence(url: str, after: int | None = None) -> dict[str, Any]:
    response = requests.get(url + "/router/evidence", params={} if after is None else {"after": after}, timeout=10)
    assert response.status_code == 200, response.text
    return dict(response.json())


def settled(server: RouterServer) -> None:
    assert server.mirrors.wait_idle(timeout_s=30), "mirror copies still in flight"


def test_round_robin_is_deterministic_and_starts_afresh_when_the_weights_change(router_server, tmp_path):
    url = url_of(router_server)
    with serving(Scorer()) as a, serving(Scorer()) as b:
        write_targets(tmp_path, {"targets": [target("A", a, 70), target("B", b, 30)]})
        releases = [score(url, [[1]]).headers["x-mlops-release"] for _ in range(10)]
        assert "".join(releases) == "ABAAABAABA"
        assert score(url, [[1]]).headers["x-mlops-release"] == "A"  # the cycle starts over
        write_targets(tmp_path, {"targets": [target("A", a, 50), target("B", b, 50)]})
        assert [score(url, [[1]]).headers["x-mlops-release"] for _ in range(3)] == ["A", "B", "A"]  # reset
        write_targets(tmp_path, {"targets": [target("A", a, 50), target("B", b, 50)], "switched_at": "later"})
        assert score(url, [[1]]).headers["x-mlops-release"] == "B"  # same weights rewritten: turns kept
        assert requests.get(url + "/", timeout=5).status_code == 200  # health takes no turn
        assert score(url, [[1]]).headers["x-mlops-release"] == "A"
        assert requests.get(url + "/router", timeout=5).json()["counts"] == {"A": 11, "B": 5}


def test_a_mirror_gets_exactly_its_share_and_its_answers_never_reach_the_caller(router_server, tmp_path):
    url = url_of(router_server)
    with serving(Scorer(1.0)) as a, serving(Scorer(10.0)) as b:
        write_targets(tmp_path, {"targets": [target("A", a)], "mirror": mirror("B", b, 30), "switched_at": "t"})
        answers = [score(url, [[k], [k + 0.5]], request_id=f"r-{k}") for k in range(1, 11)]
        assert [r.json() for r in answers] == [{"result": [k, k + 0.5]} for k in range(1, 11)]
        assert {r.headers["x-mlops-release"] for r in answers} == {"A"}
        settled(router_server)
        # requests 4, 7 and 10 (floor(k * 30 / 100) steps up), same body and request id as the primary's
        assert [request_id for _, request_id in b.received] == ["r-4", "r-7", "r-10"]
        assert [json.loads(body)["data"] for body, _ in b.received] == [[[k], [k + 0.5]] for k in (4, 7, 10)]
        info = requests.get(url + "/router", timeout=5).json()
        assert info["mirror"] == {"release_id": "B", "port": b.port, "share": 30}
        assert info["counts"] == {"A": 10}  # copies are not routed requests
        report = evidence(url)
        assert report["served"]["A"]["requests"] == 10
        assert report["mirrored"]["B"]["requests"] == 3
        assert report["mirrored"]["B"]["predictions"] == [40, 45, 70, 75, 100, 105]
        assert report["pairs"]["B"] == [[4, 40], [4.5, 45], [7, 70], [7.5, 75], [10, 100], [10.5, 105]]
        assert evidence(url, after=7)["mirrored"]["B"]["requests"] == 1  # by the primary's sequence number

        write_targets(tmp_path, {"targets": [target("A", a)], "mirror": None})
        score(url, [[1]])
        settled(router_server)
        assert len(b.received) == 3
        assert requests.get(url + "/router", timeout=5).json()["mirror"] is None


def test_the_mirror_may_also_be_a_primary_target(router_server, tmp_path):
    url = url_of(router_server)
    with serving(Scorer(1.0)) as a, serving(Scorer(2.0)) as b:
        write_targets(tmp_path, {"targets": [target("A", a, 50), target("B", b, 50)], "mirror": mirror("B", b, 100)})
        answers = [score(url, [[3]]) for _ in range(4)]
        assert [(r.headers["x-mlops-release"], r.json()["result"]) for r in answers] == [
            ("A", [3]), ("B", [6]), ("A", [3]), ("B", [6])
        ]  # fmt: skip
        settled(router_server)
        assert len(b.received) == 2 + 4  # its own two, and a copy of every request
        report = evidence(url)
        assert {k: v["requests"] for k, v in report["served"].items()} == {"A": 2, "B": 2}
        assert report["mirrored"]["B"]["requests"] == 4
        assert report["pairs"]["B"] == [[3, 6], [6, 6], [3, 6], [6, 6]]


def test_evidence_has_the_agreed_shape_and_filters_by_sequence_number(router_server, tmp_path):
    url = url_of(router_server)
    empty = evidence(url)
    assert empty == {"router_id": empty["router_id"], "seq": 0, "oldest_seq": 0, "served": {}, "mirrored": {},
                     "pairs": {}, "mirror_dropped": 0}  # fmt: skip
    assert str(uuid.UUID(empty["router_id"], version=4)) == empty["router_id"]
    assert requests.get(url + "/router", timeout=5).json()["router_id"] == empty["router_id"]
    with serving(Scorer(1.0)) as a, serving(Scorer(2.0)) as b:
        write_targets(tmp_path, {"targets": [target("A", a)], "mirror": mirror("B", b, 100)})
        for k in range(1, 4):
            score(url, [[k]])
        settled(router_server)
        report = evidence(url)
        assert set(report) == {"router_id", "seq", "oldest_seq", "served", "mirrored", "pairs", "mirror_dropped"}
        assert (report["seq"], report["oldest_seq"], report["mirror_dropped"]) == (3, 1, 0)
        served = report["served"]["A"]
        assert set(served) == {"requests", "errors", "latencies_ms", "predictions"}
        assert (served["requests"], served["errors"], served["predictions"]) == (3, 0, [1, 2, 3])
        assert len(served["latencies_ms"]) == 3 and all(ms >= 0 for ms in served["latencies_ms"])
        assert report["mirrored"]["B"]["predictions"] == [2, 4, 6]
        assert report["pairs"] == {"B": [[1, 2], [2, 4], [3, 6]]}

        later = evidence(url, after=2)
        assert later["seq"] == 3
        assert later["served"]["A"]["predictions"] == [3] and later["served"]["A"]["requests"] == 1
        assert later["pairs"] == {"B": [[3, 6]]}
        assert evidence(url, after=3)["served"] == {}
        mark = evidence(url, after=10**17)  # how a client takes a mark: where the router stands, nothing else
        assert {k: mark[k] for k in ("seq", "oldest_seq", "served", "mirrored", "pairs", "mirror_dropped")} == {
            "seq": 3, "oldest_seq": 1, "served": {}, "mirrored": {}, "pairs": {}, "mirror_dropped": 0
        }  # fmt: skip


@pytest.mark.parametrize("after", ["abc", "-1", "1.5", "", "9" * 40, "²"])
def test_a_bad_after_is_a_400(router, after):
    response = requests.get(router + "/router/evidence", params={"after": after}, timeout=5)
    assert response.status_code == 400
    assert "after" in response.json()["error"]
    twice = requests.get(router + "/router/evidence?after=1&after=2", timeout=5)
    assert twice.status_code == 400


def test_server_errors_and_unreachable_upstreams_are_counted_as_errors(router_server, tmp_path):
    url = url_of(router_server)
    with serving(Scorer(status=500)) as failing, serving(Scorer(status=400)) as refusing:
        write_targets(tmp_path, {"targets": [target("bad", failing)]})
        assert score(url, [[1]]).status_code == 500
        write_targets(tmp_path, {"targets": [target("picky", refusing)]})
        assert score(url, [[1]]).status_code == 400
        write_targets(tmp_path, {"targets": [{"release_id": "gone", "port": free_port(), "weight": 100}]})
        assert score(url, [[1]]).status_code == 502
        report = evidence(url)
        assert {k: (v["requests"], v["errors"], v["predictions"]) for k, v in report["served"].items()} == {
            "bad": (1, 1, []),
            "picky": (1, 0, []),  # a client error is not the deployment's failure
            "gone": (1, 1, []),
        }


def test_what_is_kept_is_bounded(tmp_path):
    small = Evidence(records=10, window=4)
    with serving(RouterServer(free_port(), tmp_path, evidence=small)) as server, serving(Scorer()) as a:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        write_targets(tmp_path, {"targets": [target("A", a)]})
        sixty = score(url, [[k] for k in range(60)])
        assert len(sixty.json()["result"]) == 60  # the caller gets the whole answer
        assert evidence(url)["served"]["A"]["predictions"] == [46, 47, 48, 49]  # the newest 4 of its first 50
        for k in range(11):
            score(url, [[1000 + k]])
        report = evidence(url)
        assert (report["seq"], report["oldest_seq"]) == (12, 3)  # the ring keeps the last 10 records
        assert report["served"]["A"]["requests"] == 10
        assert report["served"]["A"]["predictions"] == [1007, 1008, 1009, 1010]
        assert len(report["served"]["A"]["latencies_ms"]) == 4
        assert evidence(url, after=11)["served"]["A"]["predictions"] == [1010]


def test_only_the_first_fifty_rows_of_an_answer_are_kept(router_server, tmp_path):
    url = url_of(router_server)
    with serving(Scorer()) as a:
        write_targets(tmp_path, {"targets": [target("A", a)]})
        assert len(score(url, [[k] for k in range(60)]).json()["result"]) == 60
        assert evidence(url)["served"]["A"]["predictions"] == list(range(50))


def test_copies_beyond_the_limit_are_dropped_and_the_caller_never_waits_for_one(tmp_path):
    gate = threading.Event()
    with (
        serving(RouterServer(free_port(), tmp_path, mirror_limit=1)) as server,
        serving(Scorer(1.0)) as a,
        serving(Scorer(2.0, gate=gate)) as slow,
    ):
        url = url_of(server)
        write_targets(tmp_path, {"targets": [target("A", a)], "mirror": mirror("B", slow, 100)})
        try:
            # the first copy hangs at the mirror until the gate opens; the callers get their answers meanwhile
            assert [score(url, [[k]]).json()["result"] for k in (1, 2, 3)] == [[1], [2], [3]]
            pending = evidence(url)
            assert (pending["seq"], pending["mirror_dropped"], pending["mirrored"]) == (3, 2, {})
        finally:
            gate.set()
        settled(server)
        report = evidence(url)
        assert report["mirrored"]["B"]["requests"] == 1
        assert report["pairs"]["B"] == [[1, 2]]
        assert report["mirror_dropped"] == 2
        assert evidence(url, after=1)["mirror_dropped"] == 2
        assert evidence(url, after=1)["mirrored"] == {}  # the copy that made it carries request 1's number


def test_a_body_too_large_to_copy_is_dropped(router_server, tmp_path, monkeypatch):
    monkeypatch.setattr(production_router, "MIRROR_MAX_BODY_BYTES", 20)
    url = url_of(router_server)
    with serving(Scorer()) as a, serving(Scorer()) as b:
        write_targets(tmp_path, {"targets": [target("A", a)], "mirror": mirror("B", b, 100)})
        assert score(url, [[1]]).status_code == 200  # {"data": [[1]]}: 15 bytes, copied
        assert score(url, [[1.0] * 10]).status_code == 200  # too large: answered, not copied
        settled(router_server)
        report = evidence(url)
        assert (report["mirrored"]["B"]["requests"], report["mirror_dropped"]) == (1, 1)


def test_a_bad_mirror_entry_is_ignored_and_the_targets_still_serve(router_server, tmp_path):
    url = url_of(router_server)
    with serving(Scorer()) as a:
        write_targets(tmp_path, {"targets": [target("A", a)], "mirror": {"release_id": "B", "share": 50}})
        assert score(url, [[1]]).status_code == 200
        write_targets(tmp_path, {"targets": [target("A", a)], "mirror": {"release_id": "B", "port": 1, "share": 0}})
        assert requests.get(url + "/router", timeout=5).json()["mirror"] is None


class RawUpstream(socketserver.ThreadingTCPServer):
    """Sends ``answer`` as it is to whatever it is asked, then closes: answers no HTTP server library writes."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, answer: bytes) -> None:
        super().__init__(("127.0.0.1", 0), _Raw)
        self.answer = answer


class _Raw(socketserver.BaseRequestHandler):
    server: RawUpstream

    def handle(self) -> None:
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = self.request.recv(65536)
            if not chunk:
                return
            received += chunk
        head, _, body = received.partition(b"\r\n\r\n")
        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)  # fmt: skip
        while len(body) < length:
            body += self.request.recv(65536)
        self.request.sendall(self.server.answer)


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        b'7\r\n{"resul\r\n9;ext=1\r\nt": [1.5]\r\n1\r\n}\r\n0\r\n\r\n',
        b'HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{"result": [1.5]}',
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
        b'Content-Length: 17\r\n\r\n{"result": [1.5]}',
    ],
    ids=["chunked", "until-close", "after-100-continue"],
)
def test_upstream_answers_framed_every_way_are_relayed(router_server, tmp_path, answer):
    url = url_of(router_server)
    with serving(RawUpstream(answer)) as upstream:
        write_targets(tmp_path, {"targets": [{"release_id": "A", "port": upstream.server_address[1], "weight": 100}]})
        response = score(url, [[1]])
        assert (response.status_code, response.json(), response.headers["content-type"]) == (
            200, {"result": [1.5]}, "application/json"
        )  # fmt: skip
        assert evidence(url)["served"]["A"]["predictions"] == [1.5]


@pytest.mark.parametrize(
    "answer",
    [b"", b"garbage\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{}", b"HTTP/1.1 2x OK\r\n\r\n"],
    ids=["nothing", "not-http", "short-body", "bad-status"],
)
def test_an_upstream_that_does_not_answer_http_is_a_502(router_server, tmp_path, answer):
    url = url_of(router_server)
    with serving(RawUpstream(answer)) as upstream:
        write_targets(tmp_path, {"targets": [{"release_id": "A", "port": upstream.server_address[1], "weight": 100}]})
        response = score(url, [[1]])
        assert response.status_code == 502
        assert "A (port" in response.json()["error"]
        assert evidence(url)["served"]["A"]["errors"] == 1


def test_client_connections_are_kept_alive(router_server, tmp_path):
    url = url_of(router_server)
    connection = http.client.HTTPConnection("127.0.0.1", router_server.server_address[1], timeout=5)
    with serving(Scorer()) as a:
        write_targets(tmp_path, {"targets": [target("A", a)]})
        try:
            connection.connect()
            first = connection.sock
            for k in range(3):
                connection.request("POST", "/score", body=json.dumps({"data": [[k]]}))
                response = connection.getresponse()
                assert (json.loads(response.read()), response.will_close) == ({"result": [k]}, False)
            connection.request("GET", "/router/evidence?after=1")
            assert json.loads(connection.getresponse().read())["served"]["A"]["requests"] == 2
            assert connection.sock is first  # one connection carried all four
        finally:
            connection.close()
        with requests.Session() as session:
            chunked = session.post(url + "/score", data=iter([b'{"data": [[1]]}']), timeout=5)
            assert (chunked.status_code, chunked.headers.get("connection")) == (411, "close")
