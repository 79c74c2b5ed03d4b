-- Publications are read a page of changes at a time, in (version, id) order: a publication of
-- the whole nation's schools has hundreds of thousands of changes.
CREATE INDEX changes_published ON schools_national.changes (version, id)
    WHERE version IS NOT NULL;
