"""Code that runs in a student's kernel: ``probe.py``, sent there as source.

The probe builds classes with the kit's torch helpers (``source/gpt/gpt_harness.py``,
shared with the students' self-check): in the grader's own processes they are
imported here, by path, under the name the probe imports; a kernel gets them as
source with the probe (``worker/probe_exchange.py``).
"""
from .. import kit

kit.load("gpt_harness")
