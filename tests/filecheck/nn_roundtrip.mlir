// Every nn op prints, parses back and prints again to the same text, in the custom
// and in the generic form.
// RUN: rkc-opt %s > %t.1.mlir
// RUN: rkc-opt %t.1.mlir > %t.2.mlir
// RUN: diff %t.1.mlir %t.2.mlir
// RUN: rkc-opt %s --print-op-generic > %t.generic.mlir
// RUN: rkc-opt %t.generic.mlir > %t.3.mlir
// RUN: diff %t.1.mlir %t.3.mlir
// RUN: filecheck %s --input-file=%t.1.mlir

builtin.module {
  func.func @main(%0: tensor<1x4x6x6xf32> {rkc.name = "images"}, %1: tensor<2x4xf32>) -> (tensor<2xf16>, tensor<3xi8>, tensor<2x3x4x5xf32>, tensor<1x4x12x12xf32> {rkc.name = "up"}, tensor<2x3xf32>, tensor<2x4xf32>, tensor<1x4x3x3xf32>, tensor<1x4x1x1xf32>, tensor<1x4x1x1xf32>, tensor<1x4x1x1xf32>, tensor<1x6x6xf32>, tensor<1x4x6x1xf32>, tensor<1x6x6xi64>, tensor<1x3x4x4xf32>, tensor<1x5x4x4xf32>, tensor<1x2x3x2xf32>, tensor<4x36xf32>, tensor<1x6x6x4xf32>, tensor<1x4x8x10xf32>, tensor<1x4x12x12xf32>, tensor<1x4x6x6xf16>, tensor<3xf32>) {
    %2 = nn.constant dense<[[[[0.000000e+00]], [[1.250000e-01]], [[2.500000e-01]], [[3.750000e-01]]], [[[5.000000e-01]], [[6.250000e-01]], [[7.500000e-01]], [[8.750000e-01]]], [[[1.000000e+00]], [[1.125000e+00]], [[1.250000e+00]], [[1.375000e+00]]], [[[1.500000e+00]], [[1.625000e+00]], [[1.750000e+00]], [[1.875000e+00]]]]> : tensor<4x4x1x1xf32>
    %3 = nn.constant dense<[5.000000e-01, -5.000000e-01, 1.000000e+00, 0.000000e+00]> : tensor<4xf32>
    %4 = nn.constant dense<5.000000e-01> : tensor<4xf32>
    %5 = nn.constant dense<[1, 2, 3]> : tensor<3xi32>
    %hex = nn.constant dense<"0x000000000000803F0000004000004040000080400000A0400000C0400000E0400000004100001041000020410000304100004041000050410000604100007041000080410000884100009041000098410000A0410000A8410000B0410000B8410000C0410000C8410000D0410000D8410000E0410000E8410000F0410000F84100000042000004420000084200000C4200001042000014420000184200001C4200002042000024420000284200002C4200003042000034420000384200003C4200004042000044420000484200004C4200005042000054420000584200005C4200006042000064420000684200006C4200007042000074420000784200007C42000080420000824200008442000086420000884200008A4200008C4200008E42000090420000924200009442000096420000984200009A4200009C4200009E420000A0420000A2420000A4420000A6420000A8420000AA420000AC420000AE420000B0420000B2420000B4420000B6420000B8420000BA420000BC420000BE420000C0420000C2420000C4420000C6420000C8420000CA420000CC420000CE420000D0420000D2420000D4420000D6420000D8420000DA420000DC420000DE420000E0420000E2420000E4420000E6420000E8420000EA420000EC420000EE42"> : tensor<2x3x4x5xf32> {rkc.name = "big"}
    %h = nn.constant dense<[1.000000e+00, -2.000000e+00]> : tensor<2xf16>
    %q = nn.constant dense<[-128, 0, 127]> : tensor<3xi8>
    %hq = nn.add %h, %h : (tensor<2xf16>, tensor<2xf16>) -> tensor<2xf16>
    %qq = nn.mul %q, %q {rkc.name = "int8 mul"} : (tensor<3xi8>, tensor<3xi8>) -> tensor<3xi8>
    %hr = nn.relu %hex : (tensor<2x3x4x5xf32>) -> tensor<2x3x4x5xf32>
    %6 = nn.conv2d %0, %2, %3 {rkc.name = "conv", strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64, activation = "clip", activation_params = array<f32: 0.000000e+00, 6.000000e+00>} : (tensor<1x4x6x6xf32>, tensor<4x4x1x1xf32>, tensor<4xf32>) -> tensor<1x4x6x6xf32>
    %7 = nn.conv_transpose2d %6, %2, %3 {strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64, output_padding = array<i64: 1, 1>} : (tensor<1x4x6x6xf32>, tensor<4x4x1x1xf32>, tensor<4xf32>) -> tensor<1x4x12x12xf32>
    %8 = nn.constant dense<1.000000e+00> : tensor<4x3xf32>
    %9 = nn.matmul %1, %8 : (tensor<2x4xf32>, tensor<4x3xf32>) -> tensor<2x3xf32>
    %10 = nn.constant dense<1.000000e+00> : tensor<4x4xf32>
    %11 = nn.gemm %1, %10, %4 {alpha = 5.000000e-01 : f32, beta = 2.000000e+00 : f32, trans_a = false, trans_b = true, activation = "leaky_relu", activation_params = array<f32: 1.000000e-01>} : (tensor<2x4xf32>, tensor<4x4xf32>, tensor<4xf32>) -> tensor<2x4xf32>
    %12 = nn.add %6, %6 : (tensor<1x4x6x6xf32>, tensor<1x4x6x6xf32>) -> tensor<1x4x6x6xf32>
    %13 = nn.sub %12, %6 : (tensor<1x4x6x6xf32>, tensor<1x4x6x6xf32>) -> tensor<1x4x6x6xf32>
    %14 = nn.mul %13, %6 : (tensor<1x4x6x6xf32>, tensor<1x4x6x6xf32>) -> tensor<1x4x6x6xf32>
    %15 = nn.div %14, %6 : (tensor<1x4x6x6xf32>, tensor<1x4x6x6xf32>) -> tensor<1x4x6x6xf32>
    %16 = nn.max %15, %6 : (tensor<1x4x6x6xf32>, tensor<1x4x6x6xf32>) -> tensor<1x4x6x6xf32>
    %17 = nn.min %16, %6 : (tensor<1x4x6x6xf32>, tensor<1x4x6x6xf32>) -> tensor<1x4x6x6xf32>
    %18 = nn.pow %17, %6 : (tensor<1x4x6x6xf32>, tensor<1x4x6x6xf32>) -> tensor<1x4x6x6xf32>
    %19 = nn.relu %18 : (tensor<1x4x6x6xf32>) -> tensor<1x4x6x6xf32>
    %20 = nn.sigmoid %19 : (tensor<1x4x6x6xf32>) -> tensor<1x4x6x6xf32>
    %21 = nn.tanh %20 : (tensor<1x4x6x6xf32>) -> tensor<1x4x6x6xf32>
    %22 = nn.exp %21 : (tensor<1x4x6x6xf32>) -> tensor<1x4x6x6xf32>
    %23 = nn.log %22 : (tensor<1x4x6x6xf32>) -> tensor<1x4x6x6xf32>
    %24 = nn.sqrt %23 : (tensor<1x4x6x6xf32>) -> tensor<1x4x6x6xf32>
    %25 = nn.abs %24 : (tensor<1x4x6x6xf32>) -> tensor<1x4x6x6xf32>
    %26 = nn.neg %25 : (tensor<1x4x6x6xf32>) -> tensor<1x4x6x6xf32>
    %27 = nn.erf %26 : (tensor<1x4x6x6xf32>) -> tensor<1x4x6x6xf32>
    %28 = nn.silu %27 : (tensor<1x4x6x6xf32>) -> tensor<1x4x6x6xf32>
    %29 = nn.hard_swish %28 : (tensor<1x4x6x6xf32>) -> tensor<1x4x6x6xf32>
    %30 = nn.gelu %29 {approximate = "tanh"} : (tensor<1x4x6x6xf32>) -> tensor<1x4x6x6xf32>
    %31 = nn.leaky_relu %30 {alpha = 2.000000e-01 : f32} : (tensor<1x4x6x6xf32>) -> tensor<1x4x6x6xf32>
    %32 = nn.hard_sigmoid %31 {alpha = 2.000000e-01 : f32, beta = 5.000000e-01 : f32} : (tensor<1x4x6x6xf32>) -> tensor<1x4x6x6xf32>
    %33 = nn.clip %32 {min = -1.000000e+00 : f32, max = 1.000000e+00 : f32} : (tensor<1x4x6x6xf32>) -> tensor<1x4x6x6xf32>
    %34 = nn.constant dense<2.500000e-01> : tensor<4x1x1xf32>
    %35 = nn.prelu %33, %34 : (tensor<1x4x6x6xf32>, tensor<4x1x1xf32>) -> tensor<1x4x6x6xf32>
    %36 = nn.softmax %35 {axis = 1 : i64} : (tensor<1x4x6x6xf32>) -> tensor<1x4x6x6xf32>
    %37 = nn.batch_norm %36, %4, %3, %3, %4 {epsilon = 1.000000e-03 : f32} : (tensor<1x4x6x6xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<1x4x6x6xf32>
    %38 = nn.constant dense<1.000000e+00> : tensor<6xf32>
    %39 = nn.constant dense<0.000000e+00> : tensor<6xf32>
    %40 = nn.layer_norm %37, %38, %39 {axis = -1 : i64, epsilon = 1.000000e-05 : f32} : (tensor<1x4x6x6xf32>, tensor<6xf32>, tensor<6xf32>) -> tensor<1x4x6x6xf32>
    %41 = nn.max_pool2d %40 {kernel = array<i64: 3, 3>, strides = array<i64: 2, 2>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, ceil_mode = true} : (tensor<1x4x6x6xf32>) -> tensor<1x4x4x4xf32>
    %42 = nn.avg_pool2d %40 {kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, ceil_mode = false, count_include_pad = true} : (tensor<1x4x6x6xf32>) -> tensor<1x4x3x3xf32>
    %43 = nn.global_avg_pool %40 : (tensor<1x4x6x6xf32>) -> tensor<1x4x1x1xf32>
    %44 = nn.global_max_pool %40 : (tensor<1x4x6x6xf32>) -> tensor<1x4x1x1xf32>
    %45 = nn.reduce_mean %40 {axes = array<i64: 2, 3>, keepdims = true} : (tensor<1x4x6x6xf32>) -> tensor<1x4x1x1xf32>
    %46 = nn.reduce_max %40 {axes = array<i64: 1>, keepdims = false} : (tensor<1x4x6x6xf32>) -> tensor<1x6x6xf32>
    %47 = nn.reduce_sum %40 {axes = array<i64: 3>, keepdims = true} : (tensor<1x4x6x6xf32>) -> tensor<1x4x6x1xf32>
    %48 = nn.argmax %40 {axis = 1 : i64, keepdims = false, select_last_index = true} : (tensor<1x4x6x6xf32>) -> tensor<1x6x6xi64>
    %49 = nn.concat %41, %41 {axis = 1 : i64} : (tensor<1x4x4x4xf32>, tensor<1x4x4x4xf32>) -> tensor<1x8x4x4xf32>
    %50, %51 = nn.split %49 {axis = 1 : i64, sizes = array<i64: 3, 5>} : (tensor<1x8x4x4xf32>) -> (tensor<1x3x4x4xf32>, tensor<1x5x4x4xf32>)
    %52 = nn.slice %40 {starts = array<i64: 0, 0, 5, 0>, ends = array<i64: 1, 4, -1, 6>, steps = array<i64: 1, 2, -2, 3>} : (tensor<1x4x6x6xf32>) -> tensor<1x2x3x2xf32>
    %53 = nn.reshape %40 {shape = array<i64: 4, 36>} : (tensor<1x4x6x6xf32>) -> tensor<4x36xf32>
    %54 = nn.transpose %40 {perm = array<i64: 0, 2, 3, 1>} : (tensor<1x4x6x6xf32>) -> tensor<1x6x6x4xf32>
    %55 = nn.pad %40 {pads = array<i64: 0, 0, 1, 2, 0, 0, 1, 2>, mode = "reflect", value = 0.000000e+00 : f32} : (tensor<1x4x6x6xf32>) -> tensor<1x4x8x10xf32>
    %56 = nn.resize %40 {sizes = array<i64: 1, 4, 12, 12>, scales = array<f32: 1.000000e+00, 1.000000e+00, 2.000000e+00, 2.000000e+00>, mode = "linear", coordinate_transformation_mode = "align_corners", nearest_mode = "floor"} : (tensor<1x4x6x6xf32>) -> tensor<1x4x12x12xf32>
    %57 = nn.cast %40 {to = f16} : (tensor<1x4x6x6xf32>) -> tensor<1x4x6x6xf16>
    %58 = nn.cast %5 {to = f32} : (tensor<3xi32>) -> tensor<3xf32>
    func.return %hq, %qq, %hr, %7, %9, %11, %42, %43, %44, %45, %46, %47, %48, %50, %51, %52, %53, %54, %55, %56, %57, %58 : tensor<2xf16>, tensor<3xi8>, tensor<2x3x4x5xf32>, tensor<1x4x12x12xf32>, tensor<2x3xf32>, tensor<2x4xf32>, tensor<1x4x3x3xf32>, tensor<1x4x1x1xf32>, tensor<1x4x1x1xf32>, tensor<1x4x1x1xf32>, tensor<1x6x6xf32>, tensor<1x4x6x1xf32>, tensor<1x6x6xi64>, tensor<1x3x4x4xf32>, tensor<1x5x4x4xf32>, tensor<1x2x3x2xf32>, tensor<4x36xf32>, tensor<1x6x6x4xf32>, tensor<1x4x8x10xf32>, tensor<1x4x12x12xf32>, tensor<1x4x6x6xf16>, tensor<3xf32>
  }
}

// CHECK:      builtin.module {
// CHECK-NEXT: func.func @main(%0: tensor<1x4x6x6xf32> {rkc.name = "images"}, %1: tensor<2x4xf32>) -> (tensor<2xf16>, tensor<3xi8>, tensor<2x3x4x5xf32>, tensor<1x4x12x12xf32> {rkc.name = "up"}, tensor<2x3xf32>, tensor<2x4xf32>, tensor<1x4x3x3xf32>, tensor<1x4x1x1xf32>, tensor<1x4x1x1xf32>, tensor<1x4x1x1xf32>, tensor<1x6x6xf32>, tensor<1x4x6x1xf32>, tensor<1x6x6xi64>, tensor<1x3x4x4xf32>, tensor<1x5x4x4xf32>, tensor<1x2x3x2xf32>, tensor<4x36xf32>, tensor<1x6x6x4xf32>, tensor<1x4x8x10xf32>, tensor<1x4x12x12xf32>, tensor<1x4x6x6xf16>, tensor<3xf32>) {
// CHECK-NEXT: %2 = nn.constant dense<{{.*}}> : tensor<4x4x1x1xf32>
// CHECK-NEXT: %3 = nn.constant dense<{{.*}}> : tensor<4xf32>
// CHECK-NEXT: %4 = nn.constant dense<{{.*}}> : tensor<4xf32>
// CHECK-NEXT: %5 = nn.constant dense<{{.*}}> : tensor<3xi32>
// CHECK-NEXT: %hex = nn.constant dense<{{.*}}> : tensor<2x3x4x5xf32> {rkc.name = "big"}
// CHECK-NEXT: %h = nn.constant dense<{{.*}}> : tensor<2xf16>
// CHECK-NEXT: %q = nn.constant dense<{{.*}}> : tensor<3xi8>
// CHECK-NEXT: %hq = nn.add %h, %h : (tensor<2xf16>, tensor<2xf16>) -> tensor<2xf16>
// CHECK-NEXT: %qq = nn.mul %q, %q {rkc.name = "int8 mul"} : (tensor<3xi8>, tensor<3xi8>) -> tensor<3xi8>
// CHECK-NEXT: %hr = nn.relu %hex : (tensor<2x3x4x5xf32>) -> tensor<2x3x4x5xf32>
// CHECK-NEXT: %6 = nn.conv2d %0, %2, %3 {rkc.name = "conv", strides = array<i64: 1, 1>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64, activation = "clip", activation_params = array<f32: 0.000000e+00, 6.000000e+00>} : (tensor<1x4x6x6xf32>, tensor<4x4x1x1xf32>, tensor<4xf32>) -> tensor<1x4x6x6xf32>
// CHECK-NEXT: %7 = nn.conv_transpose2d %6, %2, %3 {strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, dilations = array<i64: 1, 1>, group = 1 : i64, output_padding = array<i64: 1, 1>} : (tensor<1x4x6x6xf32>, tensor<4x4x1x1xf32>, tensor<4xf32>) -> tensor<1x4x12x12xf32>
// CHECK-NEXT: %8 = nn.constant dense<{{.*}}> : tensor<4x3xf32>
// CHECK-NEXT: %9 = nn.matmul %1, %8 : (tensor<2x4xf32>, tensor<4x3xf32>) -> tensor<2x3xf32>
// CHECK-NEXT: %10 = nn.constant dense<{{.*}}> : tensor<4x4xf32>
// CHECK-NEXT: %11 = nn.gemm %1, %10, %4 {alpha = 5.000000e-01 : f32, beta = 2.000000e+00 : f32, trans_a = false, trans_b = true, activation = "leaky_relu", activation_params = array<f32: 1.000000e-01>} : (tensor<2x4xf32>, tensor<4x4xf32>, tensor<4xf32>) -> tensor<2x4xf32>
// CHECK-NEXT: %12 = nn.add %6, %6 : (tensor<1x4x6x6xf32>, tensor<1x4x6x6xf32>) -> tensor<1x4x6x6xf32>
// CHECK-NEXT: %13 = nn.sub %12, %6 : (tensor<1x4x6x6xf32>, tensor<1x4x6x6xf32>) -> tensor<1x4x6x6xf32>
// CHECK-NEXT: %14 = nn.mul %13, %6 : (tensor<1x4x6x6xf32>, tensor<1x4x6x6xf32>) -> tensor<1x4x6x6xf32>
// CHECK-NEXT: %15 = nn.div %14, %6 : (tensor<1x4x6x6xf32>, tensor<1x4x6x6xf32>) -> tensor<1x4x6x6xf32>
// CHECK-NEXT: %16 = nn.max %15, %6 : (tensor<1x4x6x6xf32>, tensor<1x4x6x6xf32>) -> tensor<1x4x6x6xf32>
// CHECK-NEXT: %17 = nn.min %16, %6 : (tensor<1x4x6x6xf32>, tensor<1x4x6x6xf32>) -> tensor<1x4x6x6xf32>
// CHECK-NEXT: %18 = nn.pow %17, %6 : (tensor<1x4x6x6xf32>, tensor<1x4x6x6xf32>) -> tensor<1x4x6x6xf32>
// CHECK-NEXT: %19 = nn.relu %18 : (tensor<1x4x6x6xf32>) -> tensor<1x4x6x6xf32>
// CHECK-NEXT: %20 = nn.sigmoid %19 : (tensor<1x4x6x6xf32>) -> tensor<1x4x6x6xf32>
// CHECK-NEXT: %21 = nn.tanh %20 : (tensor<1x4x6x6xf32>) -> tensor<1x4x6x6xf32>
// CHECK-NEXT: %22 = nn.exp %21 : (tensor<1x4x6x6xf32>) -> tensor<1x4x6x6xf32>
// CHECK-NEXT: %23 = nn.log %22 : (tensor<1x4x6x6xf32>) -> tensor<1x4x6x6xf32>
// CHECK-NEXT: %24 = nn.sqrt %23 : (tensor<1x4x6x6xf32>) -> tensor<1x4x6x6xf32>
// CHECK-NEXT: %25 = nn.abs %24 : (tensor<1x4x6x6xf32>) -> tensor<1x4x6x6xf32>
// CHECK-NEXT: %26 = nn.neg %25 : (tensor<1x4x6x6xf32>) -> tensor<1x4x6x6xf32>
// CHECK-NEXT: %27 = nn.erf %26 : (tensor<1x4x6x6xf32>) -> tensor<1x4x6x6xf32>
// CHECK-NEXT: %28 = nn.silu %27 : (tensor<1x4x6x6xf32>) -> tensor<1x4x6x6xf32>
// CHECK-NEXT: %29 = nn.hard_swish %28 : (tensor<1x4x6x6xf32>) -> tensor<1x4x6x6xf32>
// CHECK-NEXT: %30 = nn.gelu %29 {approximate = "tanh"} : (tensor<1x4x6x6xf32>) -> tensor<1x4x6x6xf32>
// CHECK-NEXT: %31 = nn.leaky_relu %30 {alpha = 2.000000e-01 : f32} : (tensor<1x4x6x6xf32>) -> tensor<1x4x6x6xf32>
// CHECK-NEXT: %32 = nn.hard_sigmoid %31 {alpha = 2.000000e-01 : f32, beta = 5.000000e-01 : f32} : (tensor<1x4x6x6xf32>) -> tensor<1x4x6x6xf32>
// CHECK-NEXT: %33 = nn.clip %32 {min = -1.000000e+00 : f32, max = 1.000000e+00 : f32} : (tensor<1x4x6x6xf32>) -> tensor<1x4x6x6xf32>
// CHECK-NEXT: %34 = nn.constant dense<{{.*}}> : tensor<4x1x1xf32>
// CHECK-NEXT: %35 = nn.prelu %33, %34 : (tensor<1x4x6x6xf32>, tensor<4x1x1xf32>) -> tensor<1x4x6x6xf32>
// CHECK-NEXT: %36 = nn.softmax %35 {axis = 1 : i64} : (tensor<1x4x6x6xf32>) -> tensor<1x4x6x6xf32>
// CHECK-NEXT: %37 = nn.batch_norm %36, %4, %3, %3, %4 {epsilon = 1.000000e-03 : f32} : (tensor<1x4x6x6xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<1x4x6x6xf32>
// CHECK-NEXT: %38 = nn.constant dense<{{.*}}> : tensor<6xf32>
// CHECK-NEXT: %39 = nn.constant dense<{{.*}}> : tensor<6xf32>
// CHECK-NEXT: %40 = nn.layer_norm %37, %38, %39 {axis = -1 : i64, epsilon = 1.000000e-05 : f32} : (tensor<1x4x6x6xf32>, tensor<6xf32>, tensor<6xf32>) -> tensor<1x4x6x6xf32>
// CHECK-NEXT: %41 = nn.max_pool2d %40 {kernel = array<i64: 3, 3>, strides = array<i64: 2, 2>, pads = array<i64: 1, 1, 1, 1>, dilations = array<i64: 1, 1>, ceil_mode = true} : (tensor<1x4x6x6xf32>) -> tensor<1x4x4x4xf32>
// CHECK-NEXT: %42 = nn.avg_pool2d %40 {kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>, pads = array<i64: 0, 0, 0, 0>, ceil_mode = false, count_include_pad = true} : (tensor<1x4x6x6xf32>) -> tensor<1x4x3x3xf32>
// CHECK-NEXT: %43 = nn.global_avg_pool %40 : (tensor<1x4x6x6xf32>) -> tensor<1x4x1x1xf32>
// CHECK-NEXT: %44 = nn.global_max_pool %40 : (tensor<1x4x6x6xf32>) -> tensor<1x4x1x1xf32>
// CHECK-NEXT: %45 = nn.reduce_mean %40 {axes = array<i64: 2, 3>, keepdims = true} : (tensor<1x4x6x6xf32>) -> tensor<1x4x1x1xf32>
// CHECK-NEXT: %46 = nn.reduce_max %40 {axes = array<i64: 1>, keepdims = false} : (tensor<1x4x6x6xf32>) -> tensor<1x6x6xf32>
// CHECK-NEXT: %47 = nn.reduce_sum %40 {axes = array<i64: 3>, keepdims = true} : (tensor<1x4x6x6xf32>) -> tensor<1x4x6x1xf32>
// CHECK-NEXT: %48 = nn.argmax %40 {axis = 1 : i64, keepdims = false, select_last_index = true} : (tensor<1x4x6x6xf32>) -> tensor<1x6x6xi64>
// CHECK-NEXT: %49 = nn.concat %41, %41 {axis = 1 : i64} : (tensor<1x4x4x4xf32>, tensor<1x4x4x4xf32>) -> tensor<1x8x4x4xf32>
// CHECK-NEXT: %50, %51 = nn.split %49 {axis = 1 : i64, sizes = array<i64: 3, 5>} : (tensor<1x8x4x4xf32>) -> (tensor<1x3x4x4xf32>, tensor<1x5x4x4xf32>)
// CHECK-NEXT: %52 = nn.slice %40 {starts = array<i64: 0, 0, 5, 0>, ends = array<i64: 1, 4, -1, 6>, steps = array<i64: 1, 2, -2, 3>} : (tensor<1x4x6x6xf32>) -> tensor<1x2x3x2xf32>
// CHECK-NEXT: %53 = nn.reshape %40 {shape = array<i64: 4, 36>} : (tensor<1x4x6x6xf32>) -> tensor<4x36xf32>
// CHECK-NEXT: %54 = nn.transpose %40 {perm = array<i64: 0, 2, 3, 1>} : (tensor<1x4x6x6xf32>) -> tensor<1x6x6x4xf32>
// CHECK-NEXT: %55 = nn.pad %40 {pads = array<i64: 0, 0, 1, 2, 0, 0, 1, 2>, mode = "reflect", value = 0.000000e+00 : f32} : (tensor<1x4x6x6xf32>) -> tensor<1x4x8x10xf32>
// CHECK-NEXT: %56 = nn.resize %40 {sizes = array<i64: 1, 4, 12, 12>, scales = array<f32: 1.000000e+00, 1.000000e+00, 2.000000e+00, 2.000000e+00>, mode = "linear", coordinate_transformation_mode = "align_corners", nearest_mode = "floor"} : (tensor<1x4x6x6xf32>) -> tensor<1x4x12x12xf32>
// CHECK-NEXT: %57 = nn.cast %40 {to = f16} : (tensor<1x4x6x6xf32>) -> tensor<1x4x6x6xf16>
// CHECK-NEXT: %58 = nn.cast %5 {to = f32} : (tensor<3xi32>) -> tensor<3xf32>
// CHECK-NEXT: func.return %hq, %qq, %hr, %7, %9, %11, %42, %43, %44, %45, %46, %47, %48, %50, %51, %52, %53, %54, %55, %56, %57, %58 : tensor<2xf16>, tensor<3xi8>, tensor<2x3x4x5xf32>, tensor<1x4x12x12xf32>, tensor<2x3xf32>, tensor<2x4xf32>, tensor<1x4x3x3xf32>, tensor<1x4x1x1xf32>, tensor<1x4x1x1xf32>, tensor<1x4x1x1xf32>, tensor<1x6x6xf32>, tensor<1x4x6x1xf32>, tensor<1x6x6xi64>, tensor<1x3x4x4xf32>, tensor<1x5x4x4xf32>, tensor<1x2x3x2xf32>, tensor<4x36xf32>, tensor<1x6x6x4xf32>, tensor<1x4x8x10xf32>, tensor<1x4x12x12xf32>, tensor<1x4x6x6xf16>, tensor<3xf32>
// CHECK-NEXT: }
// CHECK-NEXT: }
