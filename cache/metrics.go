package cache

import (
	"context"
	"database/sql"
	"fmt"
	"math"
)

// RecordMetrics stores (or replaces) named metrics of an execution. NaN is
// stored as NULL, which SQLite would do anyway, and read back as NaN: a
// constant voxel's Pearson r is NaN and that must survive the round trip.
func (s *Store) RecordMetrics(ctx context.Context, execID int64, m map[string]float64) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, `INSERT INTO metrics (exec_id, name, value) VALUES (?, ?, ?)
			ON CONFLICT (exec_id, name) DO UPDATE SET value = excluded.value`)
		if err != nil {
			return err
		}
		defer st.Close()
		for k, v := range m {
			var val any = v
			if math.IsNaN(v) {
				val = nil
			}
			if _, err := st.ExecContext(ctx, execID, k, val); err != nil {
				return fmt.Errorf("metric %s: %w", k, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record metrics of execution %d: %w", execID, err)
	}
	return nil
}

// Metrics returns all metrics of an execution (empty, not an error, when it
// has none).
func (s *Store) Metrics(ctx context.Context, execID int64) (map[string]float64, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, value FROM metrics WHERE exec_id = ?`, execID)
	if err != nil {
		return nil, fmt.Errorf("metrics of execution %d: %w", execID, err)
	}
	defer rows.Close()
	m := map[string]float64{}
	for rows.Next() {
		var k string
		var v sql.NullFloat64
		if err := rows.Scan(&k, &v); err != nil {
			return nil, fmt.Errorf("metrics of execution %d: %w", execID, err)
		}
		if v.Valid {
			m[k] = v.Float64
		} else {
			m[k] = math.NaN()
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("metrics of execution %d: %w", execID, err)
	}
	return m, nil
}
