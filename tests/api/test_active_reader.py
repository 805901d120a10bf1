"""``agentensor_api.active``: an application reads the mounted ``<name>-active`` ConfigMap and sees
a kubelet-style atomic update (new timestamped directory, ``..data`` symlink renamed over, old
directory removed). The files are what the operator's ``active_config_map`` writes."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import socket
import tempfile
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentensor_api import config_checksum
from agentensor_api.active import KEYS, ActiveConfig, ActiveConfigError, ActiveConfigReader, read_active_config
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


Entry = str | bytes | Callable[[Path], object]
"""A file's text, its raw bytes, or a function that creates whatever the test wants at the path."""


class KubeletVolume:
    """A ConfigMap volume laid out and updated as the kubelet's AtomicWriter does it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir()
        self.generation = 0

    def write(self, data: Mapping[str, Entry]) -> None:
        self.generation += 1
        stamp = f"..2026_12_02_06_00_00.{self.generation:09d}"
        (self.root / stamp).mkdir()
        for key, value in data.items():
            path = self.root / stamp / key
            if isinstance(value, str):
                path.write_text(value, encoding="utf-8")
            elif isinstance(value, bytes):
                path.write_bytes(value)
            else:
                value(path)
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


# -- hostile updates (issue 20 item 5) -------------------------------------------------------------
GOOD_PROMPTS = {"intent.a": "alpha", "intent.b": "PRIVATE-PROMPT-TEXT"}
GOOD_PARAMETERS = {"temperature": 0.2}


def _good(version: int = 1) -> dict[str, str]:
    return _data(version, GOOD_PROMPTS, GOOD_PARAMETERS)


def _deep(depth: int) -> str:
    return '{"t": ' + "[" * depth + "]" * depth + "}"


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _socket(path: Path) -> None:
    here = Path.cwd()
    os.chdir(path.parent)  # a socket path is limited to 108 bytes: bind a relative name
    try:
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(path.name)
        sock.close()
    finally:
        os.chdir(here)


def _sparse(size: int) -> Callable[[Path], object]:
    def make(path: Path) -> None:
        with path.open("wb") as f:
            f.truncate(size)

    return make


MALFORMED = [
    pytest.param({"version": "\u0663"}, "version: expected a positive integer", id="version-arabic-indic-digit"),
    pytest.param({"version": "\u00b2"}, "version: expected a positive integer", id="version-superscript-digit"),
    pytest.param({"version": "9" * 5000}, "version: expected a positive integer", id="version-5000-digits"),
    pytest.param({"version": str(2**63)}, "version: expected a positive integer", id="version-over-int64"),
    pytest.param({"version": "1_000"}, "version: expected a positive integer", id="version-underscore"),
    pytest.param({"version": "0"}, "version: expected a positive integer", id="version-zero"),
    pytest.param({"parameters.json": '{"t": NaN}'}, "parameters.json: invalid JSON: NaN", id="nan"),
    pytest.param({"parameters.json": '{"t": -Infinity}'}, "invalid JSON: -Infinity", id="infinity"),
    pytest.param({"parameters.json": '{"t": 1e999}'}, "out of range", id="float-overflow"),
    pytest.param({"parameters.json": '{"t": ' + "7" * 5000 + "}"}, "Exceeds the limit", id="int-5000-digits"),
    pytest.param({"prompts.json": '{"intent.a": "\\ud800"}'}, "lone surrogate", id="lone-surrogate"),
    pytest.param({"prompts.json": '{"\\udfff": "x"}'}, "lone surrogate", id="lone-surrogate-key"),
    pytest.param({"parameters.json": _deep(100_000)}, "nested too deeply", id="deep-json"),
    pytest.param({"prompts.json": b'{"intent.a": "\xff\xfe"}'}, "prompts.json: not UTF-8", id="invalid-utf8"),
    pytest.param({"prompts.json": '["alpha"]'}, "prompt name -> text", id="prompts-a-list"),
    pytest.param({"prompts.json": '{"intent.a": {"text": "x"}}'}, "prompt name -> text", id="prompt-an-object"),
    pytest.param({"parameters.json": "[]"}, "parameters.json: expected an object", id="parameters-a-list"),
    pytest.param({"checksum": "0" * 64}, "checksum: the prompts and parameters hash to", id="checksum-mismatch"),
    pytest.param({"checksum": "not hex"}, "checksum: expected 64 lowercase hex", id="checksum-not-hex"),
    pytest.param({"prompts.json": _fifo}, "a FIFO, not a regular file", id="fifo"),
    pytest.param({"version": _socket}, "cannot read", id="socket"),
    pytest.param({"parameters.json": os.mkdir}, "a directory, not a regular file", id="directory"),
    pytest.param({"checksum": lambda p: os.symlink("/dev/null", p)}, "a device, not a regular file", id="device"),
    pytest.param({"prompts.json": _sparse(2**20 + 1)}, "larger than 1048576 bytes", id="over-1-MiB"),
]


@pytest.mark.parametrize(("change", "message"), MALFORMED)
def test_a_malformed_update_keeps_the_last_good_config_and_is_read_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, change: dict[str, Entry], message: str
) -> None:
    volume = KubeletVolume(tmp_path / "mnt")
    volume.write(_good())
    reader = ActiveConfigReader(volume.root)
    good = reader.get()
    volume.write({**_good(2), **change})
    with caplog.at_level(logging.WARNING, logger="agentensor_api.active"):
        assert _guarded_get(reader) == (True, [good])
        reads = reader.reads
        assert all(reader.get() is good for _ in range(20))
    assert reader.reads == reads, "a refused state is read once, not on every call"
    assert reader.last_error is not None and message in str(reader.last_error)
    assert reader.rejected_updates == 1 and reader.last_rejection == str(reader.last_error)
    [record] = caplog.records
    assert "keeping version 1" in record.getMessage() and message in record.getMessage()
    assert "PRIVATE-PROMPT-TEXT" not in record.getMessage() + reader.last_rejection

    volume.write(_good(3))
    assert reader.get().version == 3 and reader.last_error is None
    assert reader.rejected_updates == 1 and reader.last_rejection is not None, "the count and reason stay"


@pytest.mark.parametrize(("change", "message"), MALFORMED)
def test_a_malformed_first_read_raises_the_named_error_once(
    tmp_path: Path, change: dict[str, Entry], message: str
) -> None:
    volume = KubeletVolume(tmp_path / "mnt")
    volume.write({**_good(), **change})
    reader = ActiveConfigReader(volume.root)
    finished, result = _guarded_get(reader)
    assert finished and len(result) == 1 and isinstance(result[0], ActiveConfigError)
    assert message in str(result[0])
    for _ in range(2):
        with pytest.raises(ActiveConfigError, match=re.escape(message)):
            reader.get()
    assert reader.reads <= 2 and reader.rejected_updates == 1
    volume.write(_good(2))
    assert reader.get().version == 2


def _guarded_get(reader: ActiveConfigReader) -> tuple[bool, list[object]]:
    """``reader.get()`` on a thread: (finished within 10 s, [its result or exception]). A reader hung
    on a FIFO (the old code) is released afterwards by opening every FIFO under the directory for
    writing, so a failing test fails instead of hanging and leaks no thread."""
    result: list[object] = []

    def call() -> None:
        try:
            result.append(reader.get())
        except Exception as e:  # recorded for the assertion
            result.append(e)

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    thread.join(10)
    finished = not thread.is_alive()
    if not finished:
        for path in reader.directory.rglob("*"):
            if path.is_fifo():
                os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        thread.join(10)
    return finished, result


def test_a_fifo_in_the_directory_never_blocks_get(tmp_path: Path) -> None:
    volume = KubeletVolume(tmp_path / "mnt")
    volume.write(_good())
    reader = ActiveConfigReader(volume.root)
    good = reader.get()
    volume.write({**_good(2), "prompts.json": _fifo})
    finished, result = _guarded_get(reader)
    assert finished, "get() blocked on a FIFO"
    assert result == [good] and reader.rejected_updates == 1
    finished, result = _guarded_get(reader)  # the lock was released: a second caller is not stuck
    assert finished and result == [good]


def test_a_plain_directory_with_a_fifo_does_not_block_the_first_read(tmp_path: Path) -> None:
    root = tmp_path / "copy"
    root.mkdir()
    for key, value in _good().items():
        (root / key).write_text(value)
    (root / "version").unlink()
    os.mkfifo(root / "version")
    finished, result = _guarded_get(ActiveConfigReader(root))
    assert finished and len(result) == 1 and isinstance(result[0], ActiveConfigError)
    assert "a FIFO" in str(result[0])


def test_after_a_bad_update_get_opens_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Counts ``os.open`` calls under the volume (not the reader's own counter): 0 per call after a
    refused update, 4 files once for the next good one."""
    volume = KubeletVolume(tmp_path / "mnt")
    volume.write(_good())
    reader = ActiveConfigReader(volume.root)
    good = reader.get()
    volume.write({**_good(2), "checksum": "0" * 64})
    assert reader.get() is good
    opened: list[str] = []
    real_open = os.open

    def counting_open(path: Any, *args: Any, **kwargs: Any) -> int:
        if str(path).startswith(str(volume.root)):
            opened.append(str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", counting_open)
    for _ in range(100):
        assert reader.get() is good
    assert opened == []
    volume.write(_good(3))
    opened.clear()  # shutil.rmtree of the old directory opens it
    assert reader.get().version == 3
    assert sorted(Path(p).name for p in opened) == sorted(KEYS)


def test_a_plain_directory_bad_update_is_read_once(tmp_path: Path) -> None:
    root = tmp_path / "copy"
    root.mkdir()
    for key, value in _good().items():
        (root / key).write_text(value)
    reader = ActiveConfigReader(root)
    good = reader.get()
    (root / "prompts.json").write_text('{"intent.a": NaN}')
    assert reader.get() is good and reader.get() is good
    assert (reader.reads, reader.rejected_updates) == (2, 1)


json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10)
json_values = st.recursive(
    json_scalars,
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=5), kids, max_size=3),
    max_leaves=8,
)


def _not_the_good(key: str) -> Callable[[bytes], bool]:
    good = _good()[key].encode()

    def differs(raw: bytes) -> bool:
        try:
            return bool(json.loads(raw) != json.loads(good))
        except (ValueError, RecursionError):
            return True

    return differs


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value).encode()


malformed_json = st.one_of(
    st.binary(max_size=64),
    st.text(max_size=40).map(str.encode),
    json_values.map(_json_bytes),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", "-1e400"]).map(lambda c: f'{{"x": {c}}}'.encode()),
    st.integers(min_value=4301, max_value=20_000).map(lambda n: ('{"x": ' + "1" * n + "}").encode()),
    st.integers(min_value=0xD800, max_value=0xDFFF).map(lambda c: f'{{"x": "\\u{c:04x}"}}'.encode()),
    st.integers(min_value=1_000, max_value=60_000).map(lambda n: _deep(n).encode()),
)
malformed_update = st.one_of(
    st.tuples(st.just("prompts.json"), malformed_json.filter(_not_the_good("prompts.json"))),
    st.tuples(st.just("parameters.json"), malformed_json.filter(_not_the_good("parameters.json"))),
    st.tuples(
        st.just("version"),
        st.one_of(
            st.text(max_size=12).filter(lambda s: not (s.strip().isascii() and s.strip().isdigit())),
            st.integers(min_value=2**63).map(str),
            st.integers(min_value=1, max_value=9000).map(lambda n: "0" * n),
        ).map(str.encode),
    ),
    st.tuples(
        st.just("checksum"), st.text(max_size=70).filter(lambda s: s.strip() != _good()["checksum"]).map(str.encode)
    ),
)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(update=malformed_update)
def test_any_malformed_update_keeps_the_last_good_config(update: tuple[str, bytes]) -> None:
    key, payload = update
    with tempfile.TemporaryDirectory() as tmp:
        volume = KubeletVolume(Path(tmp) / "mnt")
        volume.write(_good())
        reader = ActiveConfigReader(volume.root)
        good = reader.get()
        volume.write({**_good(), key: payload})
        assert reader.get() is good
        assert isinstance(reader.last_error, ActiveConfigError) and reader.rejected_updates == 1
        reads = reader.reads
        assert reader.get() is good and reader.reads == reads
        with pytest.raises(ActiveConfigError):
            ActiveConfigReader(volume.root).get()
