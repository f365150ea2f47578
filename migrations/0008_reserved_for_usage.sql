-- 0008: reserved for the usage branch's migration (issue 24: hourly usage buckets). This placeholder exists
-- only so that 0009 applies on the pools branch before usage is merged (migrations are numbered without
-- gaps); when usage's 0008 is merged, this file is deleted.
SELECT 1;
