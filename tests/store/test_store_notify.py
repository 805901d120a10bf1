"""Run-change notifications: the writers NOTIFY on commit, a listener reads the run ids."""

from __future__ import annotations

import pytest

from agentensor_store import DatabaseUnavailableError, RunNotFoundError, Store


def test_sqlite_has_no_listener(tmp_path: object) -> None:
    with Store(f"sqlite:///{tmp_path}/s.db") as store:
        assert store.listen_run_changes() is None


@pytest.mark.postgres
def test_writers_notify_the_run_id_on_commit(pg_session_url: str) -> None:
    with Store(pg_session_url) as store:
        listener = store.listen_run_changes()
        assert listener is not None
        try:
            store.create_run(run_id="n1", kind="TrainingRun", namespace="ns", name="x", workflow="w", spec={})
            assert listener.poll(0.2) == set()  # creating a run is the operator's news, not the runner's
            store.update_run("n1", phase="Running", status={"phase": "Running"})
            assert listener.poll(30) == {"n1"}
            version = store.register_version("w-notify", {"p": "v"}, {}, namespace="ns")
            store.add_checkpoint("n1", epoch=0, version=version, score=0.5, scores={})
            assert listener.poll(30) == {"n1"}
            with pytest.raises(RunNotFoundError):  # a failed write sends nothing
                store.update_run("missing", phase="Running")
            assert listener.poll(0.2) == set()
        finally:
            listener.close()


@pytest.mark.postgres
def test_a_lost_connection_is_a_database_error(pg_session_url: str) -> None:
    with Store(pg_session_url) as store:
        listener = store.listen_run_changes()
        assert listener is not None
        listener.close()
        with pytest.raises(DatabaseUnavailableError, match="listening for run changes"):
            listener.poll(0.1)
