"""Studies: named phases of runs, run through the sweep machinery, then one report.

``spec`` reads a study's YAML into frozen dataclasses and expands its phases
into runs with their run keys; ``run`` runs the missing ones and writes the
report.
"""

from ferlab.study.run import StudyOutcome, run_study, summary_text
from ferlab.study.spec import Phase, Study, load_study

__all__ = ["Phase", "Study", "StudyOutcome", "load_study", "run_study", "summary_text"]
