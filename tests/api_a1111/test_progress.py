"""A1111's progress, interrupt and skip over tsr's job queue (the fake holds a generation
until it is released, so the job stays "generating" as long as a test needs)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from tests.api_a1111.conftest import BEARER, A1111Server

SMALL = {"width": 64, "height": 64, "steps": 4}


@contextmanager
def in_background(server: A1111Server, payload: dict[str, Any]) -> Iterator[list[httpx.Response]]:
    """POST txt2img from another thread (as a second client would); its answer once done."""
    answers: list[httpx.Response] = []
    thread = threading.Thread(
        target=lambda: answers.append(server.post("/sdapi/v1/txt2img", payload)), daemon=True
    )
    thread.start()
    try:
        yield answers
    finally:
        server.fake_mode(hold=False)
        thread.join(60)


def _progress(server: A1111Server) -> dict[str, Any]:
    answer = server.get("/sdapi/v1/progress")
    assert answer.status_code == 200
    result: dict[str, Any] = answer.json()
    return result


def _generating(server: A1111Server) -> dict[str, Any] | None:
    report = _progress(server)
    return report if "is generating" in (report["textinfo"] or "") else None


def test_progress_follows_the_queue_while_a_job_runs(a1111: A1111Server) -> None:
    idle = _progress(a1111)
    assert (idle["progress"], idle["eta_relative"], idle["state"]["job_count"]) == (0.0, 0.0, 0)
    assert idle["current_image"] is None

    a1111.fake_mode(hold=True)
    with in_background(a1111, {"prompt": "slow", "n_iter": 2, **SMALL}) as answers:
        report = a1111.wait_until(lambda: _generating(a1111))
        jobs = a1111.api("/api/jobs", state="running")
        assert report["state"]["job"] == f"tsr generate job {jobs[0]['id']}"
        assert report["state"]["job_count"] == 2  # the one generating and the one queued
        assert report["state"]["sampling_steps"] == 4
        assert 0.0 < report["progress"] < 1.0
        assert report["current_image"] is None
        assert "sd-server reports no steps" in report["textinfo"]
    assert answers[0].status_code == 200
    assert len(answers[0].json()["images"]) == 2
    done = _progress(a1111)
    assert (done["progress"], done["state"]["job_count"]) == (0.0, 0)
    # with jobs finished, the next one's progress is estimated from their speed
    a1111.fake_mode(hold=True)
    with in_background(a1111, {"prompt": "again", **SMALL}):
        report = a1111.wait_until(lambda: _generating(a1111))
        assert "estimated from recent jobs" in report["textinfo"]
        assert report["eta_relative"] >= 0.0


def test_interrupt_cancels_what_has_not_reached_sd_server(a1111: A1111Server) -> None:
    a1111.fake_mode(hold=True)
    with in_background(a1111, {"prompt": "many", "n_iter": 3, "seed": 10, **SMALL}) as answers:
        a1111.wait_until(lambda: _generating(a1111))
        # a job from another front end (the tsr API), queued behind: interrupt leaves it alone
        other = httpx.post(
            f"{a1111.url}/api/generate", json={"prompt": "mine", **SMALL}, headers=BEARER
        ).json()

        answer = a1111.post("/sdapi/v1/interrupt", None)

        assert (answer.status_code, answer.json()) == (200, {})
        assert _progress(a1111)["state"]["interrupted"] is True
    body = answers[0].json()
    info = json.loads(body["info"])
    # the image already generating on sd-server could not be stopped: it is the answer
    assert len(body["images"]) == 1 and info["all_seeds"] == [10]
    states = {job["id"]: job["state"] for job in a1111.api("/api/jobs")}
    assert [states[job_id] for job_id in info["tsr"]["jobs"]] == ["done", "cancelled", "cancelled"]
    a1111.wait_until(lambda: a1111.api(f"/api/jobs/{other['id']}")["state"] == "done")
    assert _progress(a1111)["state"]["interrupted"] is False


def test_skip_drops_the_next_job_of_a1111_requests_only(a1111: A1111Server) -> None:
    a1111.fake_mode(hold=True)
    first = httpx.post(
        f"{a1111.url}/api/generate", json={"prompt": "ahead", **SMALL}, headers=BEARER
    ).json()
    try:
        a1111.wait_until(lambda: a1111.api(f"/api/jobs/{first['id']}")["state"] == "running")
        with in_background(a1111, {"prompt": "behind", **SMALL}) as answers:
            a1111.wait_until(lambda: len(a1111.api("/api/jobs", state="queued")) == 1)

            answer = a1111.post("/sdapi/v1/skip", None)

            assert (answer.status_code, answer.json()) == (200, None)
    finally:
        a1111.fake_mode(hold=False)
    body = answers[0].json()
    assert body["images"] == [] and json.loads(body["info"])["all_seeds"] == []
    a1111.wait_until(lambda: a1111.api(f"/api/jobs/{first['id']}")["state"] == "done")


def test_interrupt_and_skip_with_nothing_running_do_nothing(a1111: A1111Server) -> None:
    assert a1111.post("/sdapi/v1/interrupt", None).json() == {}
    assert a1111.post("/sdapi/v1/skip", None).json() is None
    assert _progress(a1111)["state"]["interrupted"] is False
