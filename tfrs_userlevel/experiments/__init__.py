"""Experiments: result tables as configurations, a runner that keys finished runs by
their configuration, and analyses over finished runs.

* `runner`: `Runner` trains a configuration per seed, or reuses its finished run
  (`runs_dir/<hash of the resolved configuration>/seed_<seed>/`);
* `tables`: every table as a base plus one row of overrides per model, and seeds;
* `report`: result rows with the significance protocol, written per study;
* `sections`: what a table shows beside its rows;
* `analyses`: parameter counts, group diversity, AUC by user activity, GPRec's
  scales and ensemble heads, read from finished runs;
* `cold_start_protocol`: the UDG paper's cold-start protocol on ML-100K.

`python experiments.py` is the command line.
"""

from tfrs_userlevel.experiments.runner import MissingRunError, Runner, configuration_key
from tfrs_userlevel.experiments.tables import TABLES, Row, Table, build_rows

__all__ = ["TABLES", "MissingRunError", "Row", "Runner", "Table", "build_rows",
           "configuration_key"]
