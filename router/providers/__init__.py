"""Upstream providers: OpenAI-compatible, Anthropic, and the deterministic offline `dev` one."""

from router.providers.anthropic import AnthropicProvider
from router.providers.base import Provider, StreamItem, parse_retry_after
from router.providers.dev import DevProvider
from router.providers.openai import OpenAIProvider

__all__ = ["AnthropicProvider", "DevProvider", "OpenAIProvider", "Provider", "StreamItem", "parse_retry_after"]
