"""ferlab: which search regime produces unified factored representations?

The data flow, one module per step: genome (``genome``, ``picbreeder``) ->
dense network (``layerize``, ``cppn``) -> image and feature maps (``render``)
-> search (``ferlab.search``) -> metrics -> tracking (``ferlab.workers``).
"""

__version__ = "0.1.0"
