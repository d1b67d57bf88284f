package vlr
import ("testing";"fmt")
func TestFitTable(t *testing.T){
 for _, d := range []int{3,5,7,9} { for _, r := range []float64{4,6,8,10,12} {
  a,_ := FitSigmoid(d,r); s,_:=FitSoftplus(d,r); fmt.Printf("d=%d r=%g maxerr=%.4g softplus=%.4g c=%v\n", d, r, a.MaxError, s.MaxError, a.C) }}
}
