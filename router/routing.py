"""Which deployments, in which order, serve a model name; and what a model's tokens cost."""

from __future__ import annotations

import fnmatch
import logging

from router.config import DEV_PROVIDER, NO_PROVIDER_HELP, DeploymentConfig, Price, RouterConfig
from router.errors import ModelNotFound, NoProvider

log = logging.getLogger("router.routing")

MAX_IMPLICIT_DEPLOYMENTS = 1024  # model names passed through to a provider's patterns, remembered


class Routes:
    def __init__(self, config: RouterConfig) -> None:
        self._deployments = {d.name: d for d in config.deployments}
        self._models = {m.name: m for m in config.models}
        self._patterns: list[tuple[str, tuple[str, ...]]] = [(p.name, p.models) for p in config.providers if p.models]
        self.provider_names = [p.name for p in config.providers] + ([DEV_PROVIDER] if config.dev else [])
        if config.dev:
            dev_patterns = ("dev", "dev/*") if config.providers else ("*",)
            self._patterns.insert(0, (DEV_PROVIDER, dev_patterns))
        self._implicit: dict[str, DeploymentConfig] = {}
        self._cache: dict[str, tuple[DeploymentConfig, ...]] = {}
        self._pricing = config.pricing
        self._price_cache: dict[str, Price | None] = {}
        self._default_timeout = config.timeouts.request
        self._warned: set[str] = set()

    @property
    def deployments(self) -> list[DeploymentConfig]:
        return [*self._deployments.values(), *self._implicit.values()]

    def model_names(self) -> list[str]:
        names = [*self._models, *self._deployments]
        return list(dict.fromkeys(names))

    def resolve(self, model: str) -> tuple[DeploymentConfig, ...]:
        """The ordered deployments for `model`: its own, then its fallbacks'. Raises ModelNotFound/NoProvider."""
        found = self._cache.get(model)
        if found is not None:
            return found
        if not self.provider_names:
            raise NoProvider(NO_PROVIDER_HELP)
        out: list[DeploymentConfig] = []
        if model in self._models:
            route = self._models[model]
            out.extend(self._deployments[d] for d in route.deployments)
            for fb in route.fallbacks:
                if fb in self._models:
                    out.extend(self._deployments[d] for d in self._models[fb].deployments)
                elif fb in self._deployments:
                    out.append(self._deployments[fb])
        elif model in self._deployments:
            out.append(self._deployments[model])
        else:
            implicit = self._match(model)
            if implicit is not None:
                out.append(implicit)
        if not out:
            known = ", ".join(self.model_names()) or "none"
            raise ModelNotFound(f'model "{model}" is not served here (models: {known})', param="model")
        result = tuple(dict.fromkeys(out))
        if len(self._cache) < MAX_IMPLICIT_DEPLOYMENTS:
            self._cache[model] = result
        return result

    def _match(self, model: str) -> DeploymentConfig | None:
        existing = self._implicit.get(model)
        if existing is not None:
            return existing
        for provider, patterns in self._patterns:
            if any(fnmatch.fnmatchcase(model, p) for p in patterns):
                dep = DeploymentConfig(name=f"{provider}/{model}", provider=provider, model=model)
                if len(self._implicit) < MAX_IMPLICIT_DEPLOYMENTS:
                    self._implicit[model] = dep
                return dep
        return None

    def timeout(self, deployment: DeploymentConfig) -> float:
        return (deployment.timeout or self._default_timeout).total_seconds()

    def price(self, model: str) -> Price | None:
        """The price of an upstream model name: exact entry first, then glob patterns; None if unknown."""
        if model in self._price_cache:
            return self._price_cache[model]
        price = self._pricing.get(model)
        if price is None:
            for pattern, p in self._pricing.items():
                if fnmatch.fnmatchcase(model, pattern):
                    price = p
                    break
        if len(self._price_cache) < MAX_IMPLICIT_DEPLOYMENTS:
            self._price_cache[model] = price
        return price

    def warn_unpriced(self, model: str, provider: str) -> None:
        if model not in self._warned and provider != DEV_PROVIDER:
            self._warned.add(model)
            log.warning("no price for model; its calls count as free", extra={"model": model, "provider": provider})
