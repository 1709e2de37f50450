"""The router's engine: replay journal, exact cache, coalescing, budgets, then the upstream call.

`submit()` decides how a call is answered, in this order: replayed from the journal (an attributed
call of a later attempt asking what the previous attempt asked), served from the exact cache,
joined to an identical call in flight, or sent upstream. Every outcome is billed in the ledger and,
when attributed, journaled. Upstream calls run in tasks of their own, so they complete (and are
cached, journaled and billed) even when the client that asked has gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from agentflow.clock import Clock, SystemClock
from agentflow.llm import Attribution, CacheResult, Grant
from router.cache import ExactCache
from router.calls import Call, Inflight
from router.completion import ChatRequest, Completion
from router.config import DEV_PROVIDER, RouterConfig
from router.dispatch import Dispatcher
from router.errors import BudgetExceeded, Error
from router.hashing import request_hash
from router.journal import Journal
from router.ledger import Ledger, Reservation
from router.metrics import RouterMetrics
from router.providers import AnthropicProvider, DevProvider, OpenAIProvider, Provider
from router.routing import Routes
from router.store import Database

log = logging.getLogger("router.engine")


@dataclass(frozen=True, slots=True, kw_only=True)
class CallOptions:
    attribution: Attribution | None = None
    grant: Grant | None = None
    timeout: float | None = None  # seconds, end to end; None: timeouts.total


@dataclass(slots=True, kw_only=True)
class Ticket:
    """One client's call: how it is answered and what it cost."""

    cache: CacheResult
    request_hash: str
    model: str
    who: Attribution | None = None
    index: int | None = None
    completion: Completion | None = None  # hit and replay: known at once
    call: Call | None = None  # miss and coalesced
    cost_usd: float = 0.0
    provider: str = ""
    reservation: Reservation | None = field(default=None, repr=False)

    run: Coroutine[Any, Any, None] | None = field(default=None, repr=False)  # the call, for the leader to drive

    async def result(self) -> Completion:
        if self.completion is None:
            assert self.call is not None
            if self.run is not None:
                run, self.run = self.run, None
                await run
            self.completion = await self.call.result()
        return self.completion


def build_providers(config: RouterConfig, clock: Clock) -> dict[str, Provider]:
    connect = config.timeouts.connect.total_seconds()
    out: dict[str, Provider] = {}
    for p in config.providers:
        if p.kind == "openai":
            out[p.name] = OpenAIProvider(p, connect_timeout=connect, wall=clock.time)
        elif p.kind == "anthropic":
            out[p.name] = AnthropicProvider(p, connect_timeout=connect, wall=clock.time)
        else:
            out[p.name] = DevProvider()
    if config.dev:
        out[DEV_PROVIDER] = DevProvider()
    return out


class Engine:
    def __init__(
        self,
        config: RouterConfig,
        *,
        db: Database,
        metrics: RouterMetrics,
        clock: Clock,
        rng: random.Random,
        providers: dict[str, Provider],
    ) -> None:
        self.config = config
        self.metrics = metrics
        self.clock = clock
        self._db = db
        self.routes = Routes(config)
        self.providers = providers
        self.cache = ExactCache(db, config.cache, clock)
        self.journal = Journal(db, clock)
        self.ledger = Ledger(db, clock, thresholds=config.budget.thresholds)
        self.dispatcher = Dispatcher(
            config, routes=self.routes, providers=providers, clock=clock, rng=rng, metrics=metrics
        )
        self.inflight = Inflight()
        self._tasks: set[asyncio.Task[None]] = set()
        self._driven = 0  # non-streamed calls run by their leader's handler
        self._default_timeout = config.timeouts.total.total_seconds()
        self._closed = False

    @classmethod
    async def open(
        cls,
        config: RouterConfig,
        *,
        metrics: RouterMetrics,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        providers: dict[str, Provider] | None = None,
    ) -> Engine:
        db = await Database.open(config.database)
        clock = clock or SystemClock()
        engine = cls(
            config,
            db=db,
            metrics=metrics,
            clock=clock,
            rng=rng or random.Random(),
            providers=providers if providers is not None else build_providers(config, clock),
        )
        await engine.cache.load()
        await engine.ledger.load()
        return engine

    async def close(self) -> None:
        """Let upstream calls in flight finish (briefly), then close providers and the database."""
        if self._closed:
            return
        self._closed = True
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=5)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1)
        await self.dispatcher.close()
        for provider in self.providers.values():
            with contextlib.suppress(Exception):
                await provider.close()
        await self._db.close()

    async def flush(self) -> None:
        """Wait until everything recorded so far is in the database (tests, shutdown)."""
        await self._db.flush()

    @property
    def busy(self) -> int:
        """Upstream calls in flight."""
        return len(self._tasks) + self._driven

    async def submit(self, request: ChatRequest, options: CallOptions) -> Ticket:
        deployments = self.routes.resolve(request.model)
        who = options.attribution
        deterministic = request.deterministic or self.cache.nondeterministic
        # the hash keys the cache, coalescing and the journal; a sampled, unattributed call needs none of them
        key = request_hash(request) if deterministic or who is not None else ""
        index = self.journal.call_index(who) if who is not None else None
        if who is not None and index is not None:
            entry = await self.journal.replay(who, index, key)
            if entry is not None:
                ticket = Ticket(
                    cache=CacheResult.REPLAY,
                    request_hash=key,
                    model=request.model,
                    who=who,
                    index=index,
                    completion=entry.completion,
                    provider=entry.provider,
                )
                self._account(ticket, entry.completion)
                return ticket
        if self.cache.enabled and deterministic and not request.no_store:
            hit = await self.cache.get(key)
            if hit is not None:
                ticket = Ticket(
                    cache=CacheResult.HIT,
                    request_hash=key,
                    model=request.model,
                    who=who,
                    index=index,
                    completion=hit,
                    provider="cache",
                )
                self._account(ticket, hit)
                return ticket
        if deterministic:
            running = self.inflight.get(key)
            if running is not None:
                ticket = Ticket(
                    cache=CacheResult.COALESCED,
                    request_hash=key,
                    model=request.model,
                    who=who,
                    index=index,
                    call=running,
                )
                running.tickets.append(ticket)
                return ticket
        estimate = request.estimated_prompt_tokens() + (request.max_tokens or self.config.budget.default_max_tokens)
        reservation = await self._reserve(request, options, deployments, estimate)
        call = Call()
        ticket = Ticket(
            cache=CacheResult.MISS,
            request_hash=key,
            model=request.model,
            who=who,
            index=index,
            call=call,
            reservation=reservation,
        )
        call.tickets.append(ticket)
        if deterministic:
            self.inflight.add(key, call)
        cacheable = self.cache.enabled and deterministic and not request.no_store
        limit_s = options.timeout or self._default_timeout
        run = self._run(call, request, deployments, key, cacheable, estimate, limit_s)
        if request.stream:
            task = asyncio.create_task(run)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            # The leader's handler drives a non-streamed call itself (one task and one loop turn less).
            # aiohttp does not cancel a handler whose client went away (handler_cancellation=False), so
            # the call still completes, is cached, journaled and billed.
            ticket.run = self._inline(run)
        return ticket

    async def _inline(self, run: Coroutine[Any, Any, None]) -> None:
        self._driven += 1
        try:
            await run
        finally:
            self._driven -= 1

    async def _reserve(
        self, request: ChatRequest, options: CallOptions, deployments: tuple[Any, ...], estimate: int
    ) -> Reservation | None:
        grant = options.grant
        if grant is None or not grant.limited:
            return None
        prompt = request.estimated_prompt_tokens()
        output = request.max_tokens or self.config.budget.default_max_tokens
        usd = 0.0
        for dep in deployments:
            price = self.routes.price(dep.model)
            if price is not None:
                usd = max(usd, price.cost(input_tokens=prompt, cached_input_tokens=0, output_tokens=output))
        who = options.attribution
        if who is None:  # a grant for this one call
            if grant.tokens is not None and estimate > grant.tokens:
                raise BudgetExceeded(
                    f"token budget exceeded: this call may use up to {estimate} tokens, the grant is {grant.tokens}",
                    tokens=True,
                )
            if grant.usd is not None and usd > grant.usd:
                raise BudgetExceeded(
                    f"USD budget exceeded: this call may cost up to ${usd:.6f}, the grant is ${grant.usd:.6f}",
                    tokens=False,
                )
            return None
        return await self.ledger.reserve(who, grant, usd=usd, tokens=estimate)

    async def _run(
        self,
        call: Call,
        request: ChatRequest,
        deployments: tuple[Any, ...],
        key: str,
        cacheable: bool,
        estimate: int,
        limit_s: float,
    ) -> None:
        leader: Ticket = call.tickets[0]
        run = leader.who.run if leader.who is not None else ""
        try:
            completion, dep = await self.dispatcher.run(
                call, request, deployments, run=run, estimate=estimate, limit_s=limit_s
            )
        except Error as exc:
            self.inflight.remove(key, call)
            if leader.reservation is not None:
                self.ledger.release(leader.reservation)
            for t in call.tickets:
                self.metrics.call("router", t.model, exc.code.value)
            log.info("call failed", extra={"model": request.model, "code": exc.code.value, "error": exc.message})
            call.fail(exc)
            return
        except asyncio.CancelledError:
            self.inflight.remove(key, call)
            if leader.reservation is not None:
                self.ledger.release(leader.reservation)
            call.fail(Error("the router is shutting down"))
            raise
        except Exception as exc:  # a bug: answer 500, keep serving
            log.exception("upstream call crashed", extra={"model": request.model})
            self.inflight.remove(key, call)
            if leader.reservation is not None:
                self.ledger.release(leader.reservation)
            call.fail(Error(f"internal error: {type(exc).__name__}"))
            return
        price = self.routes.price(dep.model)
        usage = completion.usage
        if price is None:
            self.routes.warn_unpriced(dep.model, dep.provider)
            cost = 0.0
        else:
            cost = price.cost(
                input_tokens=usage.input_tokens,
                cached_input_tokens=usage.cached_input_tokens,
                output_tokens=usage.output_tokens,
            )
        if cacheable:
            self.cache.put(key, completion)
        self.inflight.remove(key, call)
        call.provider = dep.provider
        leader.cost_usd = cost
        children = self.metrics.upstream(dep.provider, dep.model)
        children.cost.inc(cost)
        children.input.inc(usage.input_tokens)
        children.cached_input.inc(usage.cached_input_tokens)
        children.output.inc(usage.output_tokens)
        call.finish(completion)
        for t in call.tickets:
            t.provider = dep.provider
            t.completion = completion
            self._account(t, completion, upstream_model=dep.model)
        if dep.provider == DEV_PROVIDER:
            log.debug("answered by the dev provider", extra={"provider": "dev", "model": request.model})

    def _account(self, ticket: Ticket, completion: Completion, *, upstream_model: str | None = None) -> None:
        """Metrics, ledger row and journal entry of one answered client call."""
        self.metrics.cache_result(ticket.cache.value)
        self.metrics.call(ticket.provider, ticket.model, "ok")
        paid = ticket.cache is CacheResult.MISS
        usage = completion.usage
        self.ledger.record(
            ticket.who,
            model=upstream_model or completion.model or ticket.model,
            provider=ticket.provider,
            cache=ticket.cache,
            usage=usage,
            cost_usd=ticket.cost_usd if paid else 0.0,
            reservation=ticket.reservation,
        )
        if ticket.who is not None and ticket.index is not None:
            self.journal.record(
                ticket.who,
                ticket.index,
                request_hash=ticket.request_hash,
                model=ticket.model,
                provider=ticket.provider,
                completion=completion,
                cost_usd=ticket.cost_usd if paid else 0.0,
                cache=ticket.cache,
            )

    def status(self) -> dict[str, Any]:
        providers = []
        for name in self.routes.provider_names:
            provider = self.providers.get(name)
            kind = (
                "dev"
                if isinstance(provider, DevProvider)
                else (provider.shape.value if provider and provider.shape else "unknown")
            )
            providers.append({"name": name, "kind": kind})
        return {
            "providers": providers,
            "deployments": [
                {"name": d.name, "provider": d.provider, "model": d.model, "rpm": d.rpm, "tpm": d.tpm}
                for d in self.routes.deployments
            ],
            "models": self.routes.model_names(),
            "breakers": self.dispatcher.breaker_states(),
            "cache": {
                "enabled": self.cache.enabled,
                "entries": self.cache.entries,
                "bytes": self.cache.bytes,
                "evictions": self.cache.evictions,
            },
            "inflight": len(self.inflight),
            "spend_today_usd": round(self.ledger.spend_today_usd, 10),
            "dev": self.config.dev,
            "time": time.time(),
        }
