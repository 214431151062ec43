-- The token a refresh issued in exchange for this one. A refresh retried after its answer was
-- lost presents a used token whose successor was never used: within the grace period the
-- successor is retired and a new one issued, so that the device keeps one working chain.
ALTER TABLE refresh_tokens ADD COLUMN replaced_by TEXT;
