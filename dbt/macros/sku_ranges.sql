{#-
    SKU ranges for building a SKU x day model in parts of at most `chunk_rows` SKU-days each.

    DuckDB's hash joins and windows stay linear while their inputs fit the memory cap and slow down
    several-fold once they spill: mart_demand_features' query over the large tier's 68 M SKU-days
    took 260 s in one statement (a profiled run filled 39 GB of disk with spill), 136 s as four
    UNION ALL parts of 17 M (10 k SKUs: 11 s, 25 k: 29 s, 50 k: 95 s). A model loops over
    `sku_ranges(w)` and filters each part's SKU-grain inputs with `in_sku_range('sku_id', sku_range)`.

    The write window's SKU-days are counted on int_sku_days_spined; the ranges split dim_products'
    SKU ids into that many equal-count parts. A daily run fits in one part: [none], no filter. The
    first range is open below and the last open above, so no SKU falls between them.
-#}
{% macro sku_ranges(w) %}
    {#- Referenced before the early return, so that parsing records the dependencies. -#}
    {%- set spine = ref('int_sku_days_spined') -%}
    {%- set products = ref('dim_products') -%}
    {%- if not execute or model.resource_type != 'model' or w.mode == 'empty' -%}
        {{ return([none]) }}
    {%- endif -%}
    {%- set sku_days = run_query(
        'select count(*) from ' ~ spine ~ ' where ' ~ in_window('date', w, 'write')
    ).columns[0].values()[0] -%}
    {%- set parts = ((sku_days / (var('chunk_rows') | int)) | round(0, 'ceil') | int) -%}
    {%- if parts <= 1 -%}
        {{ return([none]) }}
    {%- endif -%}
    {%- set bounds = run_query(
        'select max(sku_id) from (select sku_id, ntile(' ~ parts ~ ') over (order by sku_id) as part from '
        ~ products ~ ') as parts group by part order by 1'
    ).columns[0].values() -%}
    {%- set ranges = [] -%}
    {%- for upper in bounds -%}
        {%- do ranges.append({
            'above': bounds[loop.index0 - 1] if not loop.first else none,
            'upto': upper if not loop.last else none,
        }) -%}
    {%- endfor -%}
    {{ log(this ~ ': ' ~ sku_days ~ ' SKU-days in ' ~ ranges | length ~ ' SKU ranges', info=true) }}
    {{ return(ranges) }}
{% endmacro %}


{#- A boolean SQL predicate keeping `column` inside one of sku_ranges(); none = everything. -#}
{% macro in_sku_range(column, sku_range) %}
    {%- if sku_range is none -%}
        1 = 1
    {%- else -%}
        {%- set conditions = [] -%}
        {%- if sku_range.above is not none %}{% do conditions.append(column ~ ' > ' ~ sku_range.above) %}{% endif -%}
        {%- if sku_range.upto is not none %}{% do conditions.append(column ~ ' <= ' ~ sku_range.upto) %}{% endif -%}
        {{ conditions | join(' and ') if conditions else '1 = 1' }}
    {%- endif -%}
{% endmacro %}
