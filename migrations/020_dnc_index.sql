-- Do-not-call entries by blind index (controller/pii): the keyed hash of
-- the number, never the number, so a copy of the database does not hand out
-- who asked not to be called. The key is the index's first 64 bits, as a
-- bigint: the btree stays as small as dnc_entries' (numbers as bigints), and
-- a collision can only put a number on a list it is not on — blocking a
-- call, never allowing one — with a chance of one in 2^64 per entry. The
-- index key never changes (rotation re-seals values, not indexes), so these
-- keys never need recomputing — and could not be: the numbers are not kept.
--
-- List first: keys are random, so with the key first every import would
-- scatter its entries over the whole btree (a new list of 1 000 000 numbers
-- next to a national list of 10 000 000 dirtied nearly every page). With the
-- list first a list's entries are one range: an import into a new list fills
-- pages in order, a replacement or a deletion touches only its list. The
-- gate probes once per list the tenant sees (a handful). No foreign key
-- (bulk imports); only the store writes, under the list's lock.
--
-- Entries of dnc_entries (numbers as E.164 digits) are moved here by the
-- first controller that starts (SealClearNumbers); lookups read both until
-- then, so controllers of the previous version can run meanwhile.

-- +goose Up
CREATE TABLE dnc_index (
    list_ref   int    NOT NULL, -- dnc_lists.ref
    number_key bigint NOT NULL, -- the blind index's first 8 bytes, big-endian, signed
    PRIMARY KEY (list_ref, number_key)
);

-- +goose Down
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM dnc_index) THEN
        RAISE EXCEPTION 'do-not-call entries are stored by blind index: migrating down would lose them';
    END IF;
END
$$;
-- +goose StatementEnd
DROP TABLE dnc_index;
