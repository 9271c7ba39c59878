-- History pages are read as a deferred join: the page's rows are found in history_at alone (an index-only scan that
-- skips the rows before the page without visiting the table), then fetched by n through this index. Reading the
-- documents while skipping made a deep page visit every row before it (130-270 ms at 200,000 entries).
CREATE UNIQUE INDEX history_n ON history (n);
