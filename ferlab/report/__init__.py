"""A study's report: statistics over a table of scored networks, plots, Markdown and CSV.

One module per part, following the data: ``spec`` (the table's columns and the
report's settings), ``stats`` (group means with bootstrap intervals over
searches; comparisons of groups on the same images), ``fit`` (the fit gate and
the loss ladder: comparisons at equal fit), ``tables`` (cells and Markdown),
``plots`` (PNG figures and the gallery) and ``write`` (``report.md`` and its
files in one folder).
"""

from ferlab.report.spec import DETAIL, LOST, RUN, SEARCH, SOURCE, Comparison, ReportSpec
from ferlab.report.write import Report, write_report

__all__ = ["DETAIL", "LOST", "RUN", "SEARCH", "SOURCE", "Comparison", "Report", "ReportSpec", "write_report"]
