-- An entry's documents (before, after) as json, the text as written, instead of jsonb. Nothing
-- looks inside them: they are written once and read back only as text, to be hashed when sealed
-- and when verified. As jsonb every document was parsed into its binary form on the way in and
-- printed back to text on the way out, for every entry, on the registration path. The chain
-- hashes that text; the conversion stores each sealed entry's text exactly as jsonb printed it,
-- so every hash still verifies. (Converting back to jsonb would reprint documents and break
-- them.) Rewrites the table once.
ALTER TABLE audit.entries
    ALTER COLUMN before TYPE json USING before::text::json,
    ALTER COLUMN after TYPE json USING after::text::json;
