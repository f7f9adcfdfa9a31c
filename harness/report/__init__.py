"""Generated reports: reproduced versus reported, ensembles, architecture fidelity, paper claims, figures.

`read` (MLflow -> typed rows) is separate from the pure `compute` (rules) and `render(ReportInputs) -> str`;
`build.generate_report` is the glue that writes `reports/<experiment>.md` and its figures.
"""
