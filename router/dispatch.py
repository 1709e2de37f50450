"""One upstream call through the deployments of a model: limits, breaker, retries, fallbacks.

For each deployment in order: skip it while its breaker is open; wait for its RPM/TPM buckets; call.
A 429, 5xx, timeout, malformed answer or dropped connection is retried on the same deployment
(after its `Retry-After`, in seconds or as an HTTP date, else exponential backoff with jitter) up to
`max_retries` times, then the next deployment is tried; so is the next one at once after a refused
connection (which also opens the breaker) or a context-length error. Any other 4xx is the caller's
fault and is answered as it is. A streamed call is only retried before its first delta went out.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass
from datetime import timedelta

from agentflow.backoff import JITTER_MAX, JITTER_MIN, retry_delay
from agentflow.clock import Clock
from router.breaker import BreakerState, CircuitBreaker
from router.calls import Call
from router.completion import ChatRequest, Completion
from router.config import DEV_PROVIDER, DeploymentConfig, RouterConfig
from router.errors import (
    ContextLengthExceeded,
    RateLimited,
    UpstreamError,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from router.limits import FairLimiter
from router.metrics import RouterMetrics
from router.providers import Provider
from router.routing import Routes

log = logging.getLogger("router.dispatch")


@dataclass(slots=True)
class DeploymentState:
    breaker: CircuitBreaker
    limiter: FairLimiter


class Dispatcher:
    def __init__(
        self,
        config: RouterConfig,
        *,
        routes: Routes,
        providers: dict[str, Provider],
        clock: Clock,
        rng: random.Random,
        metrics: RouterMetrics,
    ) -> None:
        self._config = config
        self._routes = routes
        self._providers = providers
        self._clock = clock
        self._rng = rng
        self._metrics = metrics
        self._states: dict[str, DeploymentState] = {}

    def state(self, dep: DeploymentConfig) -> DeploymentState:
        found = self._states.get(dep.name)
        if found is None:
            gauge = self._metrics.breaker_state.labels(dep.name)
            gauge.set(BreakerState.CLOSED)
            found = self._states[dep.name] = DeploymentState(
                breaker=CircuitBreaker(
                    failures=self._config.breaker.failures,
                    cooldown=self._config.breaker.cooldown.total_seconds(),
                    clock=self._clock,
                    on_change=lambda s, g=gauge, name=dep.name: self._breaker_changed(name, g, s),  # type: ignore[misc]
                ),
                limiter=FairLimiter(
                    rpm=dep.rpm, tpm=dep.tpm, clock=self._clock, on_wait=self._metrics.rate_limit_wait.observe
                ),
            )
        return found

    @staticmethod
    def _breaker_changed(name: str, gauge: object, state: BreakerState) -> None:
        gauge.set(int(state))  # type: ignore[attr-defined]
        log.warning("circuit breaker changed", extra={"deployment": name, "state": state.name.lower()})

    def breaker_states(self) -> dict[str, str]:
        return {name: s.breaker.state.name.lower() for name, s in self._states.items()}

    async def run(
        self,
        call: Call,
        request: ChatRequest,
        deployments: tuple[DeploymentConfig, ...],
        *,
        run: str,
        estimate: int,
        limit_s: float,
    ) -> tuple[Completion, DeploymentConfig]:
        """The answer and the deployment that gave it; raises the last error when every deployment failed.

        `limit_s` bounds the whole call, waits and retries included. It is enforced as one deadline that
        each upstream attempt, limiter wait and backoff sleep is cut to (one timer per attempt, not two).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit_s
        last: UpstreamError | None = None
        retry = self._config.retry
        for dep in deployments:
            state = self.state(dep)
            provider = self._providers[dep.provider]
            failures = 0
            while True:
                if not state.breaker.allow():
                    last = last or UpstreamUnavailable(f"deployment {dep.name}: circuit breaker open")
                    break
                waited = time.perf_counter()
                if state.limiter.limited:
                    try:
                        async with asyncio.timeout_at(deadline):
                            await state.limiter.acquire(run, estimate)
                    except TimeoutError:
                        raise total_timeout_error(limit_s) from None
                started = time.perf_counter()
                call.upstream_s += started - waited
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise total_timeout_error(limit_s)
                try:
                    completion = await self._once(
                        call, provider, dep, request, min(remaining, self._routes.timeout(dep))
                    )
                except ContextLengthExceeded as exc:
                    state.breaker.success()
                    last = exc
                    self._metrics.retries.labels(dep.name, "context_length").inc()
                    break
                except UpstreamRejected:
                    state.breaker.success()
                    raise
                except UpstreamUnavailable as exc:
                    state.breaker.trip()
                    last = exc
                    self._metrics.retries.labels(dep.name, "unavailable").inc()
                    break
                except UpstreamError as exc:
                    if isinstance(exc, UpstreamTimeout) and loop.time() >= deadline:
                        raise total_timeout_error(limit_s) from None
                    if isinstance(exc, RateLimited):
                        state.breaker.release_probe()
                    else:
                        state.breaker.failure()
                    if call.streamed:
                        raise
                    last = exc
                    failures += 1
                    if failures > dep.max_retries:
                        self._metrics.retries.labels(dep.name, "fallback").inc()
                        break
                    delay = exc.retry_after
                    if delay is None:
                        delay = retry_delay(
                            failures=failures,
                            base=retry.base,
                            cap=retry.cap,
                            jitter=self._rng.uniform(JITTER_MIN, JITTER_MAX),
                        ).total_seconds()
                    if delay > retry.max_wait.total_seconds() or loop.time() + delay >= deadline:
                        self._metrics.retries.labels(dep.name, "fallback").inc()
                        break
                    self._metrics.retries.labels(dep.name, "retry").inc()
                    log.info(
                        "retrying upstream call",
                        extra={"deployment": dep.name, "error": exc.message, "delay_s": round(delay, 3)},
                    )
                    await self._clock.sleep(timedelta(seconds=delay))
                    continue
                except BaseException:
                    state.breaker.release_probe()
                    raise
                finally:
                    call.upstream_s += time.perf_counter() - started
                elapsed = time.perf_counter() - started
                state.breaker.success()
                self._metrics.upstream(dep.provider, dep.model).seconds.observe(elapsed)
                state.limiter.adjust(completion.usage.total_tokens - estimate)
                return completion, dep
        raise last or UpstreamUnavailable("no deployment could take the call")

    async def _once(
        self, call: Call, provider: Provider, dep: DeploymentConfig, request: ChatRequest, limit_s: float
    ) -> Completion:
        call.model = "dev/" + request.model if dep.provider == DEV_PROVIDER else dep.model
        if not request.stream:
            return await provider.complete(dep, request, limit_s=limit_s)
        completion: Completion | None = None
        async for item in provider.stream(dep, request, limit_s=limit_s):
            if isinstance(item, str):
                call.publish(item)
            else:
                completion = item
        if completion is None:
            raise UpstreamError(f"{provider.name} stream ended without an answer")
        return completion

    async def close(self) -> None:
        for state in self._states.values():
            await state.limiter.close()


def total_timeout_error(seconds: float) -> UpstreamTimeout:
    return UpstreamTimeout(f"the call did not finish within its timeout of {seconds:g}s (retries included)")
