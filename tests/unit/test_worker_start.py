"""`video-ingest worker`: Prefect's Kubernetes worker start, resolving to our worker class."""

from video_ingest.platform.worker import FreshPoolKubernetesWorker, prefect_worker_args


def test_worker_starts_as_prefects_kubernetes_worker_with_its_health_server() -> None:
    assert prefect_worker_args("video-ingest", None) == [
        "worker", "start", "--type", "kubernetes", "--pool", "video-ingest", "--with-healthcheck"]
    assert prefect_worker_args("p", "w-1")[-2:] == ["--name", "w-1"]


def test_prefects_kubernetes_worker_type_resolves_to_the_worker_that_rereads_its_pool() -> None:
    from prefect.cli._worker_utils import _load_worker_class

    assert _load_worker_class("kubernetes") is FreshPoolKubernetesWorker
