"""``agentensor_api.active``: an application reads the mounted ``<name>-active`` ConfigMap and sees
a kubelet-style atomic update (new timestamped directory, ``..data`` symlink renamed over, old
directory removed). The files are what the operator's ``active_config_map`` writes."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest

from agentensor_api import config_checksum
from agentensor_api.active import ActiveConfig, ActiveConfigError, ActiveConfigReader, read_active_config
from agentensor_operator._decisions import active_config_map

BODY = {"metadata": {"name": "router", "namespace": "ml", "uid": "u-1"}}


def _data(
    version: int, prompts: dict[str, str], parameters: dict[str, Any], checksum: str | None = None
) -> dict[str, str]:
    data: dict[str, str] = active_config_map(
        BODY,
        version=version,
        checksum=checksum or config_checksum(prompts, parameters),
        prompts=prompts,
        parameters=parameters,
    )["data"]
    return data


class KubeletVolume:
    """A ConfigMap volume laid out and updated as the kubelet's AtomicWriter does it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir()
        self.generation = 0

    def write(self, data: dict[str, str]) -> None:
        self.generation += 1
        stamp = f"..2026_12_02_06_00_00.{self.generation:09d}"
        (self.root / stamp).mkdir()
        for key, value in data.items():
            (self.root / stamp / key).write_text(value, encoding="utf-8")
        link = self.root / "..data"
        old = os.readlink(link) if link.is_symlink() else None
        os.symlink(stamp, self.root / "..data_tmp")
        os.rename(self.root / "..data_tmp", link)  # the atomic swap
        for key in data:
            if not (self.root / key).is_symlink():
                os.symlink(f"..data/{key}", self.root / key)
        if old is not None:
            shutil.rmtree(self.root / old)


def test_reads_what_the_operator_writes(tmp_path: Path) -> None:
    volume = KubeletVolume(tmp_path / "mnt")
    volume.write(_data(3, {"intent.a": "alpha\nline two", "intent.b?": "beta"}, {"temperature": 0.2}))
    config = read_active_config(volume.root)
    assert config == ActiveConfig(
        version=3,
        checksum=config_checksum({"intent.a": "alpha\nline two", "intent.b?": "beta"}, {"temperature": 0.2}),
        prompts={"intent.a": "alpha\nline two", "intent.b?": "beta"},
        parameters={"temperature": 0.2},
    )


def test_reload_after_an_atomic_symlink_swap(tmp_path: Path) -> None:
    volume = KubeletVolume(tmp_path / "mnt")
    volume.write(_data(1, {"intent.a": "alpha"}, {}))
    seen: list[ActiveConfig] = []
    reader = ActiveConfigReader(volume.root, on_change=seen.append)
    first = reader.get()
    assert first.version == 1 and reader.get() is first, "unchanged mount: the cached object, no re-read"

    volume.write(_data(2, {"intent.a": "alpha, trained"}, {"k": 1}))
    second = reader.get()
    assert (second.version, second.prompts, second.parameters) == (2, {"intent.a": "alpha, trained"}, {"k": 1})
    assert seen == [second] and reader.get() is second
    assert len([p for p in volume.root.iterdir() if p.name.startswith("..2026")]) == 1, "old directory removed"

    volume.write(_data(1, {"intent.a": "alpha"}, {}))  # rollback
    assert reader.get().version == 1 and [c.version for c in seen] == [2, 1]


def test_a_bad_update_keeps_the_last_good_config(tmp_path: Path) -> None:
    volume = KubeletVolume(tmp_path / "mnt")
    volume.write(_data(1, {"intent.a": "alpha"}, {}))
    reader = ActiveConfigReader(volume.root)
    good = reader.get()
    volume.write(_data(2, {"intent.a": "tampered"}, {}, checksum=good.checksum))
    assert reader.get() is good
    assert reader.last_error is not None and "checksum" in str(reader.last_error)
    volume.write(_data(3, {"intent.a": "fixed"}, {}))
    assert reader.get().version == 3 and reader.last_error is None


def test_a_plain_directory_is_watched_by_its_files(tmp_path: Path) -> None:
    root = tmp_path / "copy"
    root.mkdir()
    for key, value in _data(1, {"intent.a": "alpha"}, {}).items():
        (root / key).write_text(value)
    reader = ActiveConfigReader(root)
    assert reader.get().version == 1
    for key, value in _data(2, {"intent.a": "alpha two"}, {}).items():
        tmp = root / f".{key}.tmp"
        tmp.write_text(value)
        os.replace(tmp, root / key)  # a new inode per file
    assert reader.get().version == 2


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        pytest.param("version", "zero", "version: expected a positive integer", id="version"),
        pytest.param("prompts.json", "{not json", "invalid JSON", id="json"),
        pytest.param("prompts.json", '{"a": 1}', "prompt name -> text", id="prompt-type"),
        pytest.param("checksum", "0" * 64, "checksum: the prompts and parameters hash to", id="checksum"),
    ],
)
def test_first_read_errors_name_the_file(tmp_path: Path, key: str, value: str, message: str) -> None:
    volume = KubeletVolume(tmp_path / "mnt")
    volume.write(_data(1, {"intent.a": "alpha"}, {}) | {key: value})
    with pytest.raises(ActiveConfigError, match=message):
        ActiveConfigReader(volume.root).get()


def test_missing_mount_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ActiveConfigError, match="cannot read"):
        read_active_config(tmp_path / "nothing")


def test_readers_on_threads_see_whole_versions_during_swaps(tmp_path: Path) -> None:
    volume = KubeletVolume(tmp_path / "mnt")
    volume.write(_data(1, {"intent.a": "v1"}, {}))
    reader = ActiveConfigReader(volume.root)
    torn: list[ActiveConfig] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            config = reader.get()
            if config.prompts["intent.a"] != f"v{config.version}":
                torn.append(config)

    threads = [threading.Thread(target=read) for _ in range(2)]
    for t in threads:
        t.start()
    for version in range(2, 40):
        volume.write(_data(version, {"intent.a": f"v{version}"}, {}))
    stop.set()
    for t in threads:
        t.join()
    assert torn == [] and reader.get().version == 39
