-- How many times a step has been handed out. A connector that reserved a record with a routing decision may skip
-- looking for an earlier attempt's result only on the step's first claim: after that another instance may have run it
-- (and crashed after the upstream call), which an instance cannot know from its own memory.
ALTER TABLE jobs ADD COLUMN claims integer NOT NULL DEFAULT 0;
