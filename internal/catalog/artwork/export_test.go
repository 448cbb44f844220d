package artwork

// HSL exposes hsl to the tests.
var HSL = hsl
