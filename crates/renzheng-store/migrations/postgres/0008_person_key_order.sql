-- Paging through the registry (key rotation, exports, scans) walks `persons` in the byte
-- order of its keys (`COLLATE "C"`). The primary key's index is in the database's own
-- collation, which the planner cannot use for that order: without this index every page
-- sorted the whole table. SQLite's primary key is already in byte order (BINARY).
CREATE INDEX persons_by_key_bytes ON persons (id_number COLLATE "C");
