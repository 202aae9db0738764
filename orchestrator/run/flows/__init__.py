"""The built-in flows, one module per flow: ``template``, ``storyboard``, ``video_edit``, and
the bodies and cuts they build (``storyboard_v1``, ``storyboard_v2``, ``transcript``).

The registry they join is ``orchestrator.input.flows``, which loads these modules by name.
"""
