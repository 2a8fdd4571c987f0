{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='order_id',
        on_schema_change='fail',
    )
}}

{%- set w = incremental_window(
    sources=[{'relation': source('raw', 'order_lines'), 'date_column': 'order_date'}],
) -%}

with

order_lines as (

    select * from {{ ref('stg_shop__order_lines') }}
    where {{ in_window('order_date', w, 'write') }}

),

final as (

    select
        order_id,
        -- one customer, one channel, one day per order (contract); min() only picks a value
        min(order_date) as order_date,
        min(customer_id) as customer_id,
        min(channel) as channel,
        count(*) as lines,
        sum(quantity) as units,
        {{ round_to('sum(line_value)') }} as order_value,
        sum(case when unit_price is null then 1 else 0 end) as lines_missing_price,
        {{ audit_columns(w) }}
    from order_lines
    group by order_id

)

select * from final
