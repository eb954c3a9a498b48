package linalg

import "math"

// Standardize returns (x - mean) / scale for an n x p matrix, and the
// training statistics it used when mean is nil. Scale is the population
// standard deviation, as sklearn's StandardScaler; constant features keep
// scale 1 so they become all-zero columns, which linear models ignore.
func Standardize[T Float](x []T, n, p int, mean, scale []T) (xs, mu, sd []T) {
	if mean == nil {
		m, s := make([]float64, p), make([]float64, p)
		for i := 0; i < n; i++ {
			row := x[i*p : (i+1)*p]
			for j, v := range row {
				m[j] += float64(v)
			}
		}
		for j := range m {
			m[j] /= float64(n)
		}
		for i := 0; i < n; i++ {
			row := x[i*p : (i+1)*p]
			for j, v := range row {
				d := float64(v) - m[j]
				s[j] += d * d
			}
		}
		mean, scale = make([]T, p), make([]T, p)
		for j := range m {
			mean[j] = T(m[j])
			sdv := math.Sqrt(s[j] / float64(n))
			if sdv < 10*math.SmallestNonzeroFloat32 || sdv <= 1e-12*math.Abs(m[j]) {
				sdv = 1
			}
			scale[j] = T(sdv)
		}
	}
	xs = make([]T, n*p)
	for i := 0; i < n; i++ {
		for j := 0; j < p; j++ {
			xs[i*p+j] = (x[i*p+j] - mean[j]) / scale[j]
		}
	}
	return xs, mean, scale
}
