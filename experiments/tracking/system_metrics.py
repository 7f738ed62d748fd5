"""MLflow's system metrics on a trial's run: sampled while the trial runs and once more as it
ends."""

from __future__ import annotations

from experiments.tracking.values import first_line


def _system_metrics_monitor():
    from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

    return SystemMetricsMonitor


class TrialSystemMetrics:
    """MLflow's system metrics of one trial's run, sampled on a thread while the trial runs.

    A trial may last two seconds (smoke) or hours, so samples come early and then spread out:
    after 1 s, then at doubling intervals up to `max_interval` seconds (10, MLflow's default;
    `MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL` sets it). `finish` logs a last sample, so every
    trial's run holds at least one. Failures are logged, never raised: figures are not results.
    """

    def __init__(self, run_id: str, tracking_uri: str, max_interval: float = 10.0):
        import logging
        import threading

        # MLflow says at INFO, on every trial, that a machine without a GPU has no GPU figures
        logging.getLogger("mlflow.system_metrics").setLevel(logging.WARNING)
        self.run_id = run_id
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        try:
            self._monitor = _system_metrics_monitor()(
                run_id, max_interval, tracking_uri=tracking_uri
            )
        except Exception as error:  # e.g. psutil missing: the trial runs on without figures
            import logging

            logging.getLogger(__name__).warning("no system metrics: %s", first_line(error))
            self._monitor = None
            return
        self.max_interval = float(self._monitor.sampling_interval)
        self._monitor.collect_metrics()  # psutil's CPU figure counts from its previous call:
        for part in self._monitor.monitors:  # this first one is discarded
            part.clear_metrics()

    def start(self) -> None:
        import threading

        if self._monitor is None:
            return
        self._thread = threading.Thread(target=self._loop, daemon=True, name="TrialSystemMetrics")
        self._thread.start()

    def _sample(self) -> None:
        with self._lock:
            monitor = self._monitor
            monitor.collect_metrics()
            monitor.publish_metrics(monitor.aggregate_metrics())

    def _loop(self) -> None:
        wait = min(1.0, self.max_interval)
        while not self._stop.wait(wait):
            try:
                self._sample()
            except Exception as error:
                import logging

                logging.getLogger(__name__).warning("system metrics: %s", first_line(error))
                return
            wait = min(wait * 2, self.max_interval)

    def finish(self) -> None:
        """Stop sampling, log a last sample and flush what is buffered."""
        if self._monitor is None:
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        try:
            self._sample()
            self._monitor.mlflow_logger.flush()
        except Exception as error:
            import logging

            logging.getLogger(__name__).warning("system metrics: %s", first_line(error))
        self._monitor = None
