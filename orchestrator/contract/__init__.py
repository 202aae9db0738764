"""Pictory's documented shapes, shared by the client and the simulator; imports nothing of ours
but errors.

Owns: ``storyboard_body``, the one model of the body of ``POST /v2/video/storyboard`` and
``POST /v2/video/storyboard/render`` (contract §6.3): the simulator answers its problems as a 400,
``validate`` reports them per manifest row before anything is sent; ``ai_credits``, Pictory's
published AI-credit prices, which the simulator charges by and the estimate counts with.

May import: ``orchestrator.errors`` and third-party libraries (pydantic). It sits at the base of
the layers (beside ``clock`` and ``files``), so every wing and the simulator may import it.
"""
