-- Relation comments for the continuous aggregates (their user-facing relation is a view).
COMMENT ON VIEW ohlc_1m IS
    'OHLC per outcome and minute: continuous aggregate over snapshots, real-time.';
COMMENT ON VIEW ohlc_1h IS
    'OHLC per outcome and hour: continuous aggregate over ohlc_1m, real-time.';
COMMENT ON VIEW ohlc_1d IS
    'OHLC per outcome and UTC day: continuous aggregate over ohlc_1h, real-time.';
