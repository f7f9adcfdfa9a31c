"""The papers' qualitative evaluation, measured (KSH12 s6.1, Fig. 3 and Fig. 4): one small module per analysis,
pure computations on arrays and models; `record` runs them on a finished run and logs the results to it."""
