"""The API against one real ``tf4ctr serve`` process (batching on, its defaults): scores equal
``tf4ctr predict``'s, both request forms, health and metrics, and 4xx JSON for bad input,
random bodies included (hypothesis)."""

from __future__ import annotations

import collections
import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from tests.serve.conftest import HeldRequest, Server, Trained, rows_as_sent, start_server

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

MAX_ROWS = 1000


@pytest.fixture(scope="module")
def server(trained: Trained, tmp_path_factory: pytest.TempPathFactory):
    log = tmp_path_factory.mktemp("serve-api") / "server.log"
    args = [str(trained.onnx), "--max-rows", str(MAX_ROWS), "--max-body-mb", "0.25"]
    with start_server(args, log) as server:
        yield server


def test_scores_equal_tf4ctr_predict(server: Server, trained: Trained):
    answer = server.predict({"instances": rows_as_sent(trained.rows)})
    got = np.array(answer["predictions"])
    assert got.shape == trained.expected.shape
    assert np.abs(got - trained.expected).max() <= 1e-6
    assert answer["model"]["name"] == "m" and len(answer["model"]["version"]) == 12


def test_concurrent_requests_are_batched_and_each_gets_its_own_rows(
    server: Server, trained: Trained
):
    rows = rows_as_sent(trained.rows)
    chunks = [(i, rows[i : i + 25]) for i in range(0, len(rows), 25)]
    calls_before = server.metric("tf4ctr_batch_rows_count")

    def score(chunk: tuple[int, list[dict[str, str]]]) -> tuple[int, list[float]]:
        return chunk[0], server.predict({"instances": chunk[1]})["predictions"]

    with ThreadPoolExecutor(8) as pool:  # 24 requests, each with its own 10 s timeout
        for start, got in pool.map(score, chunks):
            want = trained.expected[start : start + len(got)]
            assert np.abs(np.array(got) - want).max() <= 1e-6
    calls = server.metric("tf4ctr_batch_rows_count") - calls_before
    assert 1 <= calls <= len(chunks)
    print(f"{len(chunks)} concurrent requests scored in {calls:.0f} ONNX Runtime calls")


def test_ranking_form_scores_each_candidate_with_the_context(server: Server, trained: Trained):
    rows = rows_as_sent(trained.rows, 50)
    user_rows = [r for r in rows if r["user"] == rows[0]["user"]] or rows[:1]
    context = {"user": user_rows[0]["user"]}
    candidates = [{k: v for k, v in r.items() if k != "user"} for r in rows]
    ranked = server.predict({"context": context, "candidates": candidates})["predictions"]
    flat = server.predict({"instances": [{**c, **context} for c in candidates]})["predictions"]
    assert ranked == flat and len(ranked) == 50


def test_unseen_and_missing_values_go_out_of_vocabulary(server: Server, trained: Trained):
    row = rows_as_sent(trained.rows, 1)[0]
    unseen = [{**row, "user": name} for name in ("nobody", "no-one", None, "")]
    scores = server.predict({"instances": [row, *unseen]})["predictions"]
    assert len(set(scores[1:])) == 1  # all four rows hit the same out-of-vocabulary id
    assert scores[0] == pytest.approx(trained.expected[0], abs=1e-6)


def test_health_readiness_model_and_metrics(server: Server, trained: Trained):
    assert server.request("GET", "/healthz")[0] == 200
    status, _, ready = server.request("GET", "/readyz")
    assert status == 200 and ready["status"] == "ready"
    _, _, model = server.request("GET", "/v1/model")
    assert model["fields"] == ["user", "item", "ctx", "price"]
    assert model["weights"] == "float32"
    assert model["version"] == ready["model"]["version"]
    ok_before = server.metric("tf4ctr_requests_total", route="/v1/predict", status="200")
    bad_before = server.metric("tf4ctr_errors_total", kind="missing_field")
    server.predict({"instances": rows_as_sent(trained.rows, 3)})
    server.request("POST", "/v1/predict", {"instances": [{"user": "u1"}]})
    assert (
        server.metric("tf4ctr_requests_total", route="/v1/predict", status="200") == ok_before + 1
    )
    assert (
        server.metric("tf4ctr_errors_total", kind="missing_field") == np.nan_to_num(bad_before) + 1
    )
    assert server.metric("tf4ctr_request_seconds_count", route="/v1/predict") >= ok_before + 2
    assert server.metric("tf4ctr_model_info", version=model["version"], name="m") == 1
    assert server.metric("tf4ctr_batch_rows_bucket", le="4.0") >= 1  # the 3-row call


BAD_BODIES = [
    # (body, status, kind, field, instance)
    (b'{"instances": [', 400, "malformed_json", None, None),
    (
        {"instances": [{"user": "u1", "item": "i1", "ctx": "1", "price": [0.5]}]},
        422,
        "wrong_type",
        "price",
        0,
    ),  # fmt: skip
    (
        {"instances": [{"user": "u1", "item": "i1", "ctx": "1", "price": 1}, {"user": "u1"}]},
        422,
        "missing_field",
        "item",
        1,
    ),  # fmt: skip
    (
        {"instances": [{"user": "u1", "item": "i1", "ctx": "1", "price": 1, "age": 3}]},
        422,
        "unknown_field",
        "age",
        0,
    ),  # fmt: skip
    (
        {"instances": [{"user": "u", "item": "i", "ctx": "1", "price": 1}] * (MAX_ROWS + 1)},
        413,
        "too_many_rows",
        "instances",
        None,
    ),  # fmt: skip
    (b'{"instances": "' + b"x" * 300_000 + b'"}', 413, "body_too_large", None, None),
]


@pytest.mark.parametrize(("body", "status", "kind", "field", "instance"), BAD_BODIES)
def test_bad_input_is_a_4xx_json_error_naming_field_and_instance(server, body, status, kind, field, instance):  # fmt: skip
    got_status, headers, answer = server.request("POST", "/v1/predict", body)
    assert got_status == status and headers["content-type"] == "application/json"
    assert answer["error"]["kind"] == kind
    assert (answer["error"]["field"], answer["error"]["instance"]) == (field, instance)


def test_unknown_routes_and_methods_answer_json(server: Server):
    for method, path, status in [("GET", "/v1/nothing", 404), ("GET", "/v1/predict", 405)]:
        got, headers, answer = server.request(method, path)
        assert got == status and answer["error"]["kind"] in {"not_found", "method_not_allowed"}


_FIELDS = ["user", "item", "ctx", "price", "label", "", "user "]
_SCALARS = st.none() | st.integers() | st.floats() | st.text(max_size=20)
_VALUES = st.recursive(
    _SCALARS | st.booleans(),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
_ROWS = (
    st.dictionaries(st.sampled_from(_FIELDS), _VALUES, max_size=6)
    | st.fixed_dictionaries({f: _VALUES for f in _FIELDS[:4]})
    | st.fixed_dictionaries({f: _SCALARS for f in _FIELDS[:4]})
)  # all fields: reaches the encoder
_BODIES = st.one_of(
    st.binary(max_size=200),
    _VALUES.map(lambda v: json.dumps(v).encode()),
    st.lists(_ROWS, max_size=5).map(lambda rows: json.dumps({"instances": rows}).encode()),
    st.tuples(_ROWS, st.lists(_ROWS, max_size=5)).map(
        lambda t: json.dumps({"context": t[0], "candidates": t[1]}).encode()
    ),
)
FUZZ_EXAMPLES = 300
tried: collections.Counter[int] = collections.Counter()


def test_random_bodies_get_an_answer_never_a_crash(server: Server, trained: Trained):
    """Random bytes, random JSON and random near-valid rows: each answer is 200 with one
    probability per row, or a 4xx JSON error; afterwards the server scores as before and its
    memory has not grown with the bodies."""
    row = rows_as_sent(trained.rows, 1)[0]
    before = server.predict({"instances": [row]})["predictions"]
    rss_before = _rss_kib(server.proc.pid)

    @settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(_BODIES)
    def check(body: bytes) -> None:
        status, headers, answer = server.request("POST", "/v1/predict", body, timeout=10)
        tried[status] += 1
        assert headers.get("content-type") == "application/json", (body, status)
        if status == 200:
            assert len(answer["predictions"]) == len(json.loads(body).get("instances") or json.loads(body)["candidates"])  # fmt: skip
        else:
            assert 400 <= status < 500 and set(answer["error"]) == {"kind", "message", "field", "instance"}, (body, answer)  # fmt: skip

    check()
    print(
        f"fuzz: {tried.total()} random bodies sent, answers by status {dict(sorted(tried.items()))}"
    )
    assert tried.total() >= FUZZ_EXAMPLES // 2
    assert server.predict({"instances": [row]})["predictions"] == before
    assert server.proc.poll() is None
    assert _rss_kib(server.proc.pid) - rss_before < 50_000


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    pytest.skip("no /proc here")


def test_the_readme_python_client_runs_against_the_server(server: Server, capsys):
    """The README's client block (fenced ``py``: it needs a server, which the README runner
    of test_readme.py does not start), on this run's fields in place of the README's."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Serving online") :]
    (block,) = re.findall(r"```py\n(.*?)```", section, re.S)
    for theirs, ours in [("user_id", "user"), ("item_id", "item"), ("hour", "ctx"), ("8000", str(server.port))]:  # fmt: skip
        block = block.replace(theirs, ours)
    exec(compile(block, "README.md", "exec"), {})  # noqa: S102 - our own README
    version, best = capsys.readouterr().out.split(" ", 1)
    assert len(version) == 12 and len(json.loads(best)) == 10


def test_a_client_that_leaves_mid_body_is_counted_not_a_crash(server: Server, trained: Trained):
    held = HeldRequest(server.port, {"instances": rows_as_sent(trained.rows, 3)})
    server.wait_metric("tf4ctr_requests_in_flight", 1)
    held.sock.close()
    server.wait_metric("tf4ctr_errors_total", 1, kind="client_disconnected")
    assert len(server.predict({"instances": rows_as_sent(trained.rows, 2)})["predictions"]) == 2
    assert "Traceback" not in server.log_text()
