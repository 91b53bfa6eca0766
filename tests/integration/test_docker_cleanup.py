"""The docker CLI's cleanup commands against a live dashboard: ``docker image prune -a
--filter until=... / label=...`` remove only what they match, ``docker system df -v`` shows
what Docker shows."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from imagestore.models import Image
from imagestore.services.disk import layers_size
from imagestore.services.import_ import import_image
from imagestore.services.tokens import create_token
from tests.builders import simple_rootfs_tar

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def docker(start_dashboard, operator, tmp_path: Path):  # type: ignore[no-untyped-def]
    cli = shutil.which("docker")
    if cli is None:
        pytest.skip("the docker CLI client is not on this machine")
    url = start_dashboard()
    _, key = create_token(operator, name="cleanup test")
    config = tmp_path / "docker-config"
    config.mkdir()
    (config / "config.json").write_text(json.dumps({"HttpHeaders": {"Authorization": f"Token {key}"}}))
    env = {**os.environ, "DOCKER_CONFIG": str(config), "DOCKER_HOST": f"tcp://{url.split('://')[1]}/docker"}

    def run(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([cli, *args], env=env, capture_output=True, text=True, timeout=120)
        if ok:
            assert result.returncode == 0, f"docker {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
        return result

    return run


def _image(marker: str, name: str, *labels: str) -> Image:
    return import_image(io.BytesIO(simple_rootfs_tar(marker)), repository=name,
                        changes=[f"LABEL {label}" for label in labels])


def test_docker_prune_filters_and_system_df(docker) -> None:  # type: ignore[no-untyped-def]
    old = _image("old", "team/old:1", "tier=web")
    new = _image("new", "team/new:1", "tier=web")
    other = _image("other", "team/other:1", "tier=db")
    assert old.created and new.created
    between = f"{(old.created.timestamp() + new.created.timestamp()) / 2:.6f}"

    df = docker("system", "df", "-v").stdout
    assert "Images space usage:" in df and "Build cache usage: 0B" in df and "UNIQUE SIZE" in df
    for name in ("team/old", "team/new", "team/other"):
        assert name in df
    summary = json.loads(docker("system", "df", "--format", "{{json .}}").stdout.splitlines()[0])
    assert summary["Type"] == "Images" and summary["TotalCount"] == "3" and summary["Active"] == "0"

    bad = docker("image", "prune", "-a", "-f", "--filter", "until=7d", ok=False)
    assert bad.returncode != 0 and "failed to parse value as time or duration" in bad.stderr and "7d" in bad.stderr
    assert Image.objects.count() == 3

    pruned = docker("image", "prune", "-a", "-f", "--filter", f"until={between}").stdout
    assert f"deleted: {old.id}" in pruned and "Total reclaimed space" in pruned
    assert set(Image.objects.values_list("id", flat=True)) == {new.id, other.id}

    before = layers_size()
    pruned = docker("image", "prune", "-a", "-f", "--filter", "label=tier=db").stdout
    assert f"deleted: {other.id}" in pruned
    assert list(Image.objects.values_list("id", flat=True)) == [new.id]
    assert before - layers_size() > 0
    docker("image", "prune", "-a", "-f", "--filter", "label!=tier=web")
    assert list(Image.objects.values_list("id", flat=True)) == [new.id]
