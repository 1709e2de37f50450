"""The component's entry: the `agent` world's `run`, calling the agent module's `run(input)`."""

import agent
import wit_world

from agentflow import _invoke


class WitWorld(wit_world.WitWorld):
    def run(self, input: str) -> str:
        return _invoke(agent.run, input)
