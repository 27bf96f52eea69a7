#!/usr/bin/env bash
# pipebot's BigQuery identity: reads the catalog (datasets, tables, columns, row counts, sizes)
# over the REST API and never a row of data.
#
# roles/bigquery.metadataViewer on a dataset grants bigquery.datasets.get, tables.list and
# tables.get (schema, numRows, numBytes, lastModifiedTime) but not tables.getData: structure,
# not rows (cloud.google.com/bigquery/docs/access-control). pipebot's catalog runs no query, so
# roles/bigquery.jobUser (jobs.create on the billing project) is only for the SQL features
# (cost and freshness queries); leave it out if you do not use them. The token pipebot asks for
# carries the read-only BigQuery scope on top of these roles.
#
# Usage:  PROJECT=my-project DATASETS="analytics staging" ./deploy/warehouse-bigquery-role.sh
# Needs gcloud and bq, logged in as someone who may create service accounts and set IAM.
# pipebot's URL is then
#   bigquery://my-project/analytics?location=US&credentials_path=/run/secrets/pipebot-bq.json
# or, on GKE / Cloud Run with the service account attached, no credentials_path (ADC).
# Not run by the tests (they talk to a local fake of the API).
set -euo pipefail

: "${PROJECT:?set PROJECT to the project that holds the datasets}"
: "${DATASETS:?set DATASETS to the space-separated datasets pipebot may describe}"
ACCOUNT_NAME="${ACCOUNT_NAME:-pipebot-metadata}"
WITH_JOB_USER="${WITH_JOB_USER:-no}"  # yes: also grant roles/bigquery.jobUser (SQL features)
# yes: spend and query history (`costs`): roles/bigquery.resourceViewer (jobs.listAll, to read
# everyone's jobs in INFORMATION_SCHEMA.JOBS — their query text included) and jobUser (to run
# that query; pipebot caps each at PIPEBOT_WAREHOUSE__USAGE_MAX_BYTES_BILLED)
WITH_USAGE="${WITH_USAGE:-no}"
KEY_FILE="${KEY_FILE:-}"               # a path: also create a JSON key there (else use ADC)
ACCOUNT="${ACCOUNT_NAME}@${PROJECT}.iam.gserviceaccount.com"

if ! gcloud iam service-accounts describe "$ACCOUNT" --project "$PROJECT" >/dev/null 2>&1; then
  gcloud iam service-accounts create "$ACCOUNT_NAME" --project "$PROJECT" \
    --display-name "pipebot (read-only catalog)"
fi

# Per dataset, not per project: pipebot sees only the datasets named here.
for dataset in $DATASETS; do
  bq query --project_id "$PROJECT" --use_legacy_sql=false --nouse_cache \
    "GRANT \`roles/bigquery.metadataViewer\` ON SCHEMA \`${PROJECT}.${dataset}\`
     TO \"serviceAccount:${ACCOUNT}\""
done

if [ "$WITH_JOB_USER" = "yes" ] || [ "$WITH_USAGE" = "yes" ]; then
  gcloud projects add-iam-policy-binding "$PROJECT" --condition=None \
    --member "serviceAccount:${ACCOUNT}" --role roles/bigquery.jobUser >/dev/null
fi

if [ "$WITH_USAGE" = "yes" ]; then
  gcloud projects add-iam-policy-binding "$PROJECT" --condition=None \
    --member "serviceAccount:${ACCOUNT}" --role roles/bigquery.resourceViewer >/dev/null
fi

if [ -n "$KEY_FILE" ]; then
  gcloud iam service-accounts keys create "$KEY_FILE" --iam-account "$ACCOUNT"
  chmod 600 "$KEY_FILE"
fi

echo "pipebot's BigQuery identity: $ACCOUNT (metadataViewer on: $DATASETS; jobUser: $WITH_JOB_USER; usage: $WITH_USAGE)"
