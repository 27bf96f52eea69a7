"""The schema review of a change: two dbt states compared, column by column, with who reads
what changed (docs/schema-review.md).

- `report` — `ChangeReview`, the result as data, and `compare(base, target)` that makes it;
- `diff` — what differs between the states (nodes, columns, renames with evidence, types,
  constraints, contracts, metadata); `datatype` — widening or narrowing; `privacy` —
  personal-looking columns without a classification;
- `sql` — what a model's SQL reads of its parents and what each column is made from (sqlglot);
  `impact` — the readers of each change, hop by hop, and its classification;
- `selector` — ``--select`` in dbt's syntax;
- renderers: `reply` (the chat `Reply`: Slack, Discord, text, Markdown), `github` (the
  pull-request comment), `document` (JSON ``pipebot.schema_review/1``); `wording` is what they
  share.

The states come through `bot.ports.DbtStates` (`integrations.dbt.state` loads them); the chat
and shell entry point is `bot.playbooks.change_review`.
"""
