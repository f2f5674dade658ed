-- Why a campaign failed: queuing it could not go on (its rule or template no longer
-- compiles, a message cannot be rendered). Its queued messages were dropped.
ALTER TABLE campaigns ADD COLUMN failure TEXT;
