-- Runs once, when the temporal-db volume is first initialised: the image creates the
-- "temporal" database (POSTGRES_DB), this adds the visibility database beside it. The
-- temporal-schema service then creates and upgrades the tables in both.
CREATE DATABASE temporal_visibility;
