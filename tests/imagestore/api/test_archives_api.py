"""History, prune, multi-remove, save (streamed and as a job), load: the REST side."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from imagestore.models import Image, Job
from imagestore.services import jobs
from imagestore.services.tag import tag_image

pytestmark = pytest.mark.django_db


def test_history_endpoint(make_image, member, client_for) -> None:  # type: ignore[no-untyped-def]
    image = make_image("busybox:latest")
    rows = client_for(member).get("/api/v1/images/busybox/history/").json()
    assert [r["Id"] for r in rows] == [image.id]
    assert client_for(member).get("/api/v1/images/nothere/history/").status_code == 404


def test_archive_download_streams_a_docker_save_tar(make_image, member, client_for) -> None:  # type: ignore[no-untyped-def]
    image = make_image("127.0.0.1:5000/tools/busybox:1")
    response = client_for(member).get("/api/v1/images/127.0.0.1:5000/tools/busybox:1/archive/")
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "application/x-tar"
    data = b"".join(response.streaming_content)  # type: ignore[arg-type]
    assert int(response["Content-Length"]) == len(data)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert manifest[0]["RepoTags"] == ["127.0.0.1:5000/tools/busybox:1"]
    assert manifest[0]["Config"] == f"blobs/sha256/{image.hex}"
    assert APIClient().get("/api/v1/images/127.0.0.1:5000/tools/busybox:1/archive/").status_code == 401


def test_save_job_then_download(make_image, operator, member, client_for) -> None:  # type: ignore[no-untyped-def]
    image = make_image("busybox:latest")
    tag_image(image, "busybox:1")
    response = client_for(operator).post("/api/v1/images/save/", {"images": ["busybox"]}, format="json")
    assert response.status_code == 202
    job_id = response.json()["id"]
    finished = jobs.run_job(job_id)
    assert finished is not None and finished.state == "succeeded", finished.error if finished else None
    layer_item = image.layers.get().digest.split(":")[1][:12]
    assert finished.progress[layer_item]["phase"] == "Saved"
    download = client_for(member).get(finished.result["download"])
    assert download.status_code == 200
    data = b"".join(download.streaming_content)  # type: ignore[attr-defined]
    assert finished.result["size"] == len(data)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert sorted(manifest[0]["RepoTags"]) == ["busybox:1", "busybox:latest"]


def test_save_errors(make_image, operator, member, client_for, store_root: Path) -> None:  # type: ignore[no-untyped-def]
    make_image("busybox:latest")
    client = client_for(operator)
    assert client.post("/api/v1/images/save/", {"images": []}, format="json").status_code == 400
    response = client.post("/api/v1/images/save/", {"images": ["busybox", "nothere:1"]}, format="json")
    assert response.status_code == 404 and "nothere:1" in response.json()["detail"]
    assert client_for(member).post("/api/v1/images/save/", {"images": ["busybox"]}, format="json").status_code == 403
    assert not Job.objects.exists()
    job = jobs.create_job("import", {})
    response = client.get(f"/api/v1/jobs/{job.id}/download/")
    assert response.status_code == 404 and "no archive" in response.json()["detail"]


def test_load_upload_runs_as_a_job(make_image, operator, client_for) -> None:  # type: ignore[no-untyped-def]
    image = make_image("busybox:latest")
    client = client_for(operator)
    data = b"".join(client.get("/api/v1/images/busybox/archive/").streaming_content)  # type: ignore[attr-defined]
    client.delete(f"/api/v1/images/{image.id}/?force=1")
    upload = io.BytesIO(data)
    upload.name = "busybox.tar"
    response = client.post("/api/v1/images/load/", {"file": upload}, format="multipart")
    assert response.status_code == 202
    finished = jobs.run_job(response.json()["id"])
    assert finished is not None and finished.state == "succeeded", finished.error if finished else None
    assert finished.result == {"loaded": ["Loaded image: busybox:latest"]}
    assert Image.objects.get().id == image.id


def test_load_of_a_corrupt_archive_fails_the_job_clearly(operator, client_for) -> None:  # type: ignore[no-untyped-def]
    upload = io.BytesIO(b"not a tar" * 100)
    upload.name = "x.tar"
    response = client_for(operator).post("/api/v1/images/load/", {"file": upload}, format="multipart")
    finished = jobs.run_job(response.json()["id"])
    assert finished is not None and finished.state == "failed"
    assert "not a valid image archive" in finished.error
    assert client_for(operator).post("/api/v1/images/load/", {}, format="multipart").status_code == 400


def test_prune_and_multi_remove(make_image, operator, member, client_for) -> None:  # type: ignore[no-untyped-def]
    dangling = make_image(None, marker="d")
    make_image("keep:1", marker="k")
    assert client_for(member).post("/api/v1/images/prune/", {}, format="json").status_code == 403
    body = client_for(operator).post("/api/v1/images/prune/", {}, format="json").json()
    assert {"Deleted": dangling.id} in body["ImagesDeleted"] and body["SpaceReclaimed"] > 0
    results = client_for(operator).post("/api/v1/images/remove/", {"images": ["keep:1", "gone:1"]},
                                        format="json").json()
    assert results[0]["name"] == "keep:1" and results[0]["records"][0] == {"Untagged": "keep:1"}
    assert results[1] == {"name": "gone:1", "error": "No such image: gone:1", "status": 404}


def test_image_named_like_an_action_is_still_reachable(make_image, member, client_for) -> None:  # type: ignore[no-untyped-def]
    image = make_image("save:latest")
    assert client_for(member).get("/api/v1/images/save/").json()["id"] == image.id
