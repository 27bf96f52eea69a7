"""The health of the data platform as one value: `HealthReport`.

`status` and `digest` both build a `HealthReport` (`bot.health.build`) and render it: as a
`Reply` (text, Markdown, Slack, Discord — ``bot/playbooks/digest.py`` and ``status.py``), as the
JSON document ``pipebot.digest/1`` (`bot.health.document`, every key in ``docs/digest.md``) and
as a PNG chart of the last 14 days (`bot.health.chart`). The exit code of ``pipebot digest
--exit-code`` is the report's `failing`, never a title string.

- `report` — the value and its parts, and the words for what needs attention;
- `build` — reading the sources (in parallel, each with a deadline) into a report;
- `selection` — the filters a schedule or a command narrows it with (DAG tags, owners, dbt
  selectors);
- `document` — the JSON form;
- `chart` — the PNG (matplotlib, imported only when a chart is drawn).
"""
