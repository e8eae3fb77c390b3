-- Runs once, when the postgres-data volume is first initialised (as POSTGRES_USER).
-- The "airflow" database is created by the image from POSTGRES_DB; MLflow gets its own.
CREATE DATABASE mlflow;
