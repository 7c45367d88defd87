"""Offline analysis of ctmq run directories (docs/analysis.md).

Reads only the files of docs/run-directory.md (plan.tsv, config.ini, and per
stage DONE, eval.json, metrics.jsonl, quant_report.json), never the logs.
"""
