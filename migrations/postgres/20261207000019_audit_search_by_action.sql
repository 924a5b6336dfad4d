-- An officer's search by action alone, in log order, a page at a time: with only
-- (action, outcome, idx), the matches of every outcome had to be read and sorted by
-- idx before the first page could be answered, so each page cost more as the log
-- grew. This index reads a page of them in order. Its inserts land at the right edge
-- of each action's range, so appends pay little for it.
CREATE INDEX audit_entries_action_in_order ON audit_entries (action, idx);
