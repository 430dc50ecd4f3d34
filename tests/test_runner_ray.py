"""The Ray executor on a real local cluster (``ray start --head`` on 127.0.0.1, started once for the module):
the same rows as the local executor, a worker killed mid-run, separate token buckets per backend, a 429 storm
that backs off cluster-wide, and ``aigc eval --executor ray`` as a user runs it (Ctrl-C, resume, clear errors)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import pytest

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage report, no network
os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a throwaway cluster on 127.0.0.1: no token file in ~/.ray

ray = pytest.importorskip("ray")

from aigc_app.runner import EvalSuite, RunInterrupted, RunOptions, run_suite  # noqa: E402
from aigc_app.runner.ray_executor import make_shards, run_suite_ray  # noqa: E402
from aigc_app.store import ResultsStore  # noqa: E402
from chains import ModelsConfig  # noqa: E402
from chains.testing import Answer, Fault, OpenAIServer, default_responder  # noqa: E402
from tests.test_cli_eval import recorded, start, suite_file, wait_for_rows  # noqa: E402
from tests.test_ratelimit import assert_paced  # noqa: E402
from tests.test_runner import Recorder, chat_requests, suite_data, tagline_library  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning", "ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def cluster():
    """A real Ray head with 2 CPUs in its own process group; this process is connected to it as a driver."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths must stay under 108 bytes
    args = [str(Path(sys.executable).parent / "ray"), "start", "--head", "--block", f"--port={port}", "--num-cpus=2",
            "--include-dashboard=false", "--node-ip-address=127.0.0.1", f"--temp-dir={temp}",
            "--disable-usage-stats"]  # fmt: skip
    log = open(f"{temp}.log", "w")  # noqa: SIM115
    head = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    address = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:  # Ray's own connect retries for seconds at a time: wait for the port first
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert head.poll() is None and time.monotonic() < deadline, Path(f"{temp}.log").read_text()
            time.sleep(0.2)
    ray.init(address=address, logging_level="error", log_to_driver=False)
    try:
        yield address
    finally:
        ray.shutdown()
        os.killpg(head.pid, signal.SIGKILL)  # the head and every worker it started: one process group
        head.wait(30)
        log.close()
        shutil.rmtree(temp, ignore_errors=True)
        Path(f"{temp}.log").unlink(missing_ok=True)


@pytest.fixture(scope="module")
def lib(tmp_path_factory) -> Path:
    return tagline_library(tmp_path_factory.mktemp("lib"))


@pytest.fixture
def store(tmp_path):
    with ResultsStore(tmp_path / "results.db") as store:
        yield store


def config_for(server: OpenAIServer, **router) -> ModelsConfig:
    openai = {"base_url": server.base_url, "api_key": "sk-test"}
    return ModelsConfig.model_validate({"openai": openai, "router": router})


def rows(results) -> list[tuple]:
    return [
        (c.case_id, c.prompt_ref, c.model, c.sample_index, c.key, c.output, c.seed, c.error,
         [(s.evaluator, s.value, s.passed, s.key) for s in c.scores])
        for c in results.cases
    ]  # fmt: skip


def run_keys(store: ResultsStore, run_id: str) -> list[tuple]:
    with store._read() as db:
        return [tuple(r) for r in db.execute("SELECT case_id, prompt_ref, model, sample_index FROM run_cases "
                                             "WHERE run_id = ?", (run_id,))]  # fmt: skip


def test_shards_are_by_case_and_stable() -> None:
    class S:  # what make_shards reads of a slot
        def __init__(self, case_id: str) -> None:
            self.case = type("C", (), {"id": case_id})()

    slots = [S(f"c{i // 2}") for i in range(400)]  # two slots per case
    shards = make_shards(slots, range(400), 64)
    assert len(shards) == 7 and sorted(i for s in shards for i in s) == list(range(400))
    assert all(len({slots[i].case.id for i in s} & {slots[j].case.id for j in t}) == 0
               for s in shards for t in shards if s is not t)  # fmt: skip
    again = make_shards(slots, range(0, 400, 3), 64)  # what is left after a partial run: same homes
    home = {i: n for n, s in enumerate(shards) for i in s}
    assert all(len({home[i] for i in s}) == 1 for s in again)


def test_200_cases_give_the_same_rows_as_the_local_executor(cluster, lib, tmp_path) -> None:
    with OpenAIServer(models=("gpt-test",)) as server:
        config = config_for(server)
        suite = EvalSuite.model_validate(suite_data(200, seed=7))
        with ResultsStore(tmp_path / "local.db") as a, ResultsStore(tmp_path / "ray.db") as b:
            local = run_suite(suite, config=config, store=a, options=RunOptions(prompts_dirs=[lib], quiet=True))
            recorder = Recorder()
            options = RunOptions(prompts_dirs=[lib], reporter=recorder)
            distributed = run_suite_ray(suite, config=config, store=b, options=options, workers=2)
            assert chat_requests(server) == 400  # 200 each
            assert len(run_keys(b, distributed.info.run_id)) == 200
    assert distributed.info.status == "finished" and len(distributed.cases) == 200
    assert rows(distributed) == rows(local)
    assert all(c.scores and c.error is None for c in distributed.cases)
    assert recorder.events[0] == ("start", 200, 0) and recorder.events[-1] == ("stop",)
    assert sorted(e[1] for e in recorder.events if e[0] == "case") == sorted(c.case_id for c in local.cases)


def _kill_a_worker_after(count: int, recorder_cases: list, run_id_box: list) -> None:
    """Called from the reporter: once ``count`` cases are in, SIGKILL worker 0's process."""
    if len(recorder_cases) != count:
        return
    name = next(n for n in ray.util.list_named_actors() if n.startswith(f"aigc-{run_id_box[0]}") and
                n.endswith("worker-0"))  # fmt: skip
    pid = ray.get(ray.get_actor(name).pid.remote())
    os.kill(pid, signal.SIGKILL)


class Killer(Recorder):
    """A reporter that kills worker 0 after ``after`` cases."""

    def __init__(self, after: int) -> None:
        super().__init__()
        self.after = after
        self.cases: list = []

    def case(self, case) -> None:
        super().case(case)
        self.cases.append(case)
        _kill_a_worker_after(self.after, self.cases, [case.run_id])


def slow(request: dict) -> Answer:
    return default_responder(request).model_copy(update={"delay_s": 0.02})


def test_a_killed_worker_loses_no_case_and_duplicates_none(cluster, lib, store) -> None:
    suite = EvalSuite.model_validate(suite_data(200, seed=1))
    with OpenAIServer(models=("gpt-test",), responder=slow) as server:
        options = RunOptions(prompts_dirs=[lib], reporter=Killer(after=30), concurrency=4)
        results = run_suite_ray(suite, config=config_for(server), store=store, options=options, workers=2)
        assert 200 <= chat_requests(server) <= 200 + 16  # only what the dead worker had not sent back is redone
    assert results.info.status == "finished" and all(c.error is None for c in results.cases)
    keys = run_keys(store, results.info.run_id)
    assert len(keys) == 200 == len(set(keys)) and len({c.key for c in results.cases}) == 200


def test_when_every_worker_dies_the_run_is_interrupted_and_resume_completes_it(cluster, lib, store) -> None:
    suite = EvalSuite.model_validate(suite_data(100, seed=1) | {"name": "alone"})
    with OpenAIServer(models=("gpt-test",), responder=slow) as server:
        config = config_for(server)
        options = RunOptions(prompts_dirs=[lib], reporter=Killer(after=15), concurrency=4)
        with pytest.raises(RunInterrupted, match="every Ray worker died") as err:
            run_suite_ray(suite, config=config, store=store, options=options, workers=1)
        run_id = err.value.info.run_id
        assert store.get_run(run_id).status == "interrupted"
        done = len(run_keys(store, run_id))
        assert 15 <= done < 100
        before = chat_requests(server)
        again = RunOptions(prompts_dirs=[lib], quiet=True, resume=run_id)
        resumed = run_suite_ray(suite, config=config, store=store, options=again, workers=2)
        assert chat_requests(server) - before == 100 - done  # only the missing slots were scheduled
    keys = run_keys(store, run_id)
    assert resumed.info.status == "finished" and len(keys) == 100 == len(set(keys))


def test_two_backends_have_separate_token_buckets_shared_by_the_workers(cluster, lib, store) -> None:
    times: dict[str, list[float]] = defaultdict(list)

    def stamp(request: dict) -> Answer:
        times[request["model"]].append(time.monotonic())
        return default_responder(request)

    limits = {"openai:gpt-a": {"requests_per_minute": 1200, "burst": 1},
              "openai:gpt-b": {"requests_per_minute": 300, "burst": 1}}  # fmt: skip
    suite = EvalSuite.model_validate(suite_data(12, models=["openai:gpt-a", "openai:gpt-b"]))
    with OpenAIServer(models=("gpt-a", "gpt-b"), responder=stamp) as server:
        options = RunOptions(prompts_dirs=[lib], quiet=True, concurrency=8)
        results = run_suite_ray(suite, config=config_for(server, rate_limits=limits), store=store, options=options,
                                workers=2)  # fmt: skip
    assert results.info.status == "finished" and len(results.cases) == 24
    assert_paced(times["gpt-a"], 20, 1)
    assert_paced(times["gpt-b"], 5, 1)  # 5 a second for the cluster, not 5 a second per worker
    span_a = times["gpt-a"][-1] - times["gpt-a"][0]
    assert span_a < 11 / 5 * 0.6, span_a  # gpt-a keeps its own pace (about 0.55 s), not gpt-b's (2.2 s)


def test_a_429_storm_backs_off_cluster_wide(cluster, lib, store) -> None:
    inside, peak, lock = 0, 0, threading.Lock()

    def counted(request: dict) -> Answer:
        nonlocal inside, peak
        with lock:
            inside += 1
            peak = max(peak, inside)
        time.sleep(0.03)  # the server answers each request on its own thread
        with lock:
            inside -= 1
        return default_responder(request)

    with OpenAIServer(models=("gpt-test",), responder=counted) as server:
        server.script(*[Fault.rate_limit(retry_after=0.05) for _ in range(16)])
        suite = EvalSuite.model_validate(suite_data(40))
        options = RunOptions(prompts_dirs=[lib], quiet=True, concurrency=8)
        results = run_suite_ray(suite, config=config_for(server), store=store, options=options, workers=2)
        assert chat_requests(server) == 40 + 16  # every refused call retried once, nothing more
    assert results.info.status == "finished" and all(c.error is None for c in results.cases)
    assert peak <= 8, peak  # two workers, one limit
    note = next(n for n in results.info.notes if n.startswith("rate limited"))
    lowest = int(note.split("concurrency ")[1].split()[0])
    assert lowest <= 4, note


def test_a_local_model_loads_in_each_worker_and_gives_the_local_rows(cluster, lib, tiny_model_path, tmp_path) -> None:
    model = f"hf:{tiny_model_path}"
    suite = EvalSuite.model_validate(suite_data(8, models=[model], seed=3) | {"params": {"max_tokens": 6}})
    config = ModelsConfig.model_validate({"local": {"device": "cpu", "dtype": "float32"}})
    options = RunOptions(prompts_dirs=[lib], quiet=True, concurrency=4)
    with ResultsStore(tmp_path / "local.db") as a, ResultsStore(tmp_path / "ray.db") as b:
        local = run_suite(suite, config=config, store=a, options=options)
        distributed = run_suite_ray(suite, config=config, store=b, options=options, workers=1)
    assert distributed.info.status == "finished" and all(c.error is None and c.output for c in distributed.cases)
    assert rows(distributed) == rows(local)  # greedy decoding: the same answers, batched in each worker


def test_a_model_a_worker_cannot_load_is_its_own_error_not_a_dead_worker(cluster, lib, store) -> None:
    from chains.errors import ModelUnavailable

    suite = EvalSuite.model_validate(suite_data(2, models=["vllm:Qwen/Qwen2.5-0.5B-Instruct"]))
    with pytest.raises(ModelUnavailable, match=r"vllm serve Qwen/Qwen2.5-0.5B-Instruct"):
        run_suite_ray(suite, config=ModelsConfig(), store=store, options=RunOptions(prompts_dirs=[lib], quiet=True))


# -- the CLI --------------------------------------------------------------------------------------------------------


def cli_env(server: OpenAIServer, tmp_path: Path, lib: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "AIGC_", "RAY_ADDRESS"))}
    return env | {
        "OPENAI_BASE_URL": server.base_url,
        "OPENAI_API_KEY": "sk-test",
        "AIGC_STORE": str(tmp_path / "results.db"),
        "AIGC_PROMPTS_PATH": str(lib),
        "OMP_NUM_THREADS": "1",
    }


def test_cli_ctrl_c_on_the_cluster_exits_130_and_prints_the_resume_command(cluster, lib, tmp_path) -> None:
    responder = lambda req: Answer(content="You said: hi", delay_s=0.1)  # noqa: E731
    with OpenAIServer(models=("gpt-test",), responder=responder) as server:
        suite = suite_file(tmp_path / "suite.yaml", 30)
        env, db = cli_env(server, tmp_path, lib), tmp_path / "results.db"
        args = ["eval", str(suite), "--executor", "ray", "--address", cluster, "--concurrency", "2", "--quiet"]
        proc = start(args, env, tmp_path)
        wait_for_rows(db, proc, 4, timeout=90)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        assert "Traceback" not in err
        with ResultsStore(db) as store:
            info = store.latest_run("taglines")
        assert info.status == "interrupted" and 4 <= recorded(db) < 30
        command = f"resume it with: aigc eval {suite} --resume {info.run_id} --executor ray --address {cluster}"
        assert command in err.splitlines(), err  # completing it that way: the resume test above, in process


def test_cli_errors_name_the_address_and_the_install_command(tmp_path, lib) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{s.getsockname()[1]}"  # nothing listens once the socket is closed
    with OpenAIServer(models=("gpt-test",)) as server:
        suite = suite_file(tmp_path / "suite.yaml", 2)
        env = cli_env(server, tmp_path, lib)
        args = ["-m", "aigc_app.cli", "eval", str(suite), "--executor", "ray", "--address", dead, "--quiet"]
        started = time.monotonic()
        result = subprocess.run([sys.executable, *args], env=env, cwd=tmp_path, capture_output=True, text=True,
                                timeout=60)  # fmt: skip
        assert result.returncode != 0 and time.monotonic() - started < 30
        assert f"cannot reach the Ray cluster at {dead}" in result.stderr and "ray start --head" in result.stderr
        assert "Traceback" not in result.stderr
        no_ray = "import sys, runpy; sys.modules['ray'] = None; runpy.run_module('aigc_app.cli', run_name='__main__')"
        result = subprocess.run([sys.executable, "-c", no_ray, *args[2:]], env=env, cwd=tmp_path,
                                capture_output=True, text=True, timeout=60)  # fmt: skip
        assert result.returncode != 0 and "pip install 'aigc[ray]'" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
        with ResultsStore(tmp_path / "results.db") as store:
            assert store.list_runs() == []  # no run was left "running"
