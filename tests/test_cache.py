from rlaif.backends.base import Completion, GenerateRequest
from rlaif.calls.cache import CallCache, CallStats
from rlaif.calls.engine import run_generate
from rlaif.config.recipe import PolicySpec
from tests.fakes import FakeBackend


def requests(n, seed=0):
    return [
        GenerateRequest(messages=(("user", f"q{i}"),), temperature=0.7, top_p=1.0, max_tokens=8, seed=seed)
        for i in range(n)
    ]


def test_second_run_is_all_cached_and_does_not_load_the_model(tmp_path):
    cache = CallCache(tmp_path / "c.sqlite")
    first = FakeBackend(PolicySpec())
    results = run_generate(first, requests(3), cache, stats := CallStats())
    assert stats.live == 3 and first.loads == 1
    second = FakeBackend(PolicySpec())
    again = run_generate(second, requests(3), cache, stats2 := CallStats())
    assert stats2.live == 0 and stats2.cached == 3 and second.calls == 0 and second.loads == 0
    assert again == results


def test_key_covers_seed_model_and_params(tmp_path):
    cache = CallCache(tmp_path / "c.sqlite")
    run_generate(FakeBackend(PolicySpec()), requests(2), cache, CallStats())
    for backend, reqs in [
        (FakeBackend(PolicySpec()), requests(2, seed=1)),
        (FakeBackend(PolicySpec(model="other")), requests(2)),
    ]:
        run_generate(backend, reqs, cache, stats := CallStats())
        assert stats.live == 2 and stats.cached == 0


def test_failures_are_never_cached_and_retried_next_run(tmp_path):
    cache = CallCache(tmp_path / "c.sqlite")

    def flaky(request):
        if request.messages[0][1] == "q1":
            raise ConnectionError("down")
        return Completion(text="ok", finish_reason="stop")

    results = run_generate(FakeBackend(PolicySpec(), gen=flaky), requests(3), cache, stats := CallStats())
    assert isinstance(results[1], ConnectionError) and stats.failed == 1 and stats.live == 2
    retry = FakeBackend(PolicySpec())
    results = run_generate(retry, requests(3), cache, stats := CallStats())
    assert stats.cached == 2 and stats.live == 1 and retry.calls == 1 and isinstance(results[1], Completion)


def test_processes_opening_a_new_cache_at_the_same_moment_all_get_it(tmp_path):
    """Runs that start together on a new store each open its cache.sqlite: none may fail with "database is locked"
    (SQLite answers a lost race to switch a new file to WAL at once, without its busy wait)."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    for round_ in range(6):
        path = tmp_path / f"store-{round_}" / "cache.sqlite"
        barrier, outcomes = context.Barrier(8), context.Queue()
        workers = [
            context.Process(target=_open_cache_together, args=(str(path), barrier, outcomes, i)) for i in range(8)
        ]
        for worker in workers:
            worker.start()
        results = [outcomes.get(timeout=120) for _ in workers]
        for worker in workers:
            worker.join(timeout=60)
        assert results == [None] * 8, results
        assert len(CallCache(path)) == 8


def _open_cache_together(path: str, barrier, outcomes, index: int) -> None:
    barrier.wait()
    try:
        CallCache(path).put(f"k{index}", {"i": index})
    except Exception as exc:  # noqa: BLE001 - reported to the test as a value
        outcomes.put(f"{type(exc).__name__}: {exc}")
        return
    outcomes.put(None)
