-- The ops console's queries. Its search looks an order up by id, external reference or customer
-- e-mail in one query: the reference is only the second column of the shops' uniqueness
-- constraint, so it needs an index of its own. The flow board's last hour starts from the
-- timeline entries of that hour.
CREATE INDEX orders_by_external_reference ON orders (external_reference);
CREATE INDEX timeline_by_time ON timeline (occurred_at);
