"""The offline stand-ins for the two LLMs: no key, no network, deterministic for a seed.

- :mod:`.policy`: the acting agent (``offline/agent``): picks an admissible action from
  the chat alone, reading the retrieved memory by a documented contract;
- :mod:`.meta`: the meta agent (``offline/meta``): answers the engine's analyze / write /
  repair prompts by recombining the mechanisms of :mod:`.mechanisms`
  (genome, operators, render);
- :mod:`.provider`: their litellm custom provider, and :func:`install`, which registers it
  with the model client (:mod:`alma_tui.llm.providers`).

Layering: this package is a plug-in of the model client, above the engine (the meta agent
parses the engine's prompts). Nothing below it imports it; the application (the CLI, the
tests' conftest) calls :func:`install` once at start-up. Importing the package is light:
the agents load on their first answer, litellm when the client first needs it.
"""

from __future__ import annotations

from alma_tui.offline.provider import OFFLINE_MODELS, install

__all__ = ["OFFLINE_MODELS", "install"]
