-- Raw series become hypertables wherever the extension exists (Apache or Timescale license).
SELECT create_hypertable('snapshots', by_range('time', INTERVAL '1 day'),
                         create_default_indexes => false);
SELECT create_hypertable('trades', by_range('time', INTERVAL '7 days'),
                         create_default_indexes => false);
